// The API, on this page's own origin: sign-in sets an HttpOnly cookie that
// every later call (ours and Uppy's) carries by itself.

export type FileStatus = 'UPLOADING' | 'UPLOADED' | 'FAILED'

export interface FileView {
  fileId: string
  fileName: string
  size: number
  status: FileStatus
  kind?: string | null
  detectedType?: string | null
  reason?: string | null
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(path, {
    method,
    credentials: 'same-origin',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const answer = await response.json().catch(() => ({}))
  if (!response.ok) {
    const error = answer?.error ?? {}
    throw new ApiError(response.status, error.code ?? 'http_error', error.message ?? `${method} ${path} answered ${response.status}`)
  }
  return answer as T
}

export const signUp = (email: string, password: string) => call<unknown>('POST', '/auth/signup', { email, password })
export const signIn = (email: string, password: string) => call<unknown>('POST', '/auth/signin', { email, password })
export const signOut = () => call<unknown>('POST', '/auth/signout')
export const listFiles = () => call<{ files: FileView[] }>('GET', '/files?limit=100')
export const getFile = (fileId: string) => call<FileView>('GET', `/files/${encodeURIComponent(fileId)}`)
