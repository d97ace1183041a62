import Uppy, { type Meta } from '@uppy/core'
import Dashboard from '@uppy/dashboard'
import AwsS3 from '@uppy/aws-s3'
import GoldenRetriever from '@uppy/golden-retriever'
import '@uppy/core/css/style.min.css'
import '@uppy/dashboard/css/style.min.css'
import './style.css'

import { ApiError, type FileView, getFile, listFiles, signIn, signOut, signUp } from './api'

const MiB = 1024 * 1024
const signinForm = document.querySelector<HTMLFormElement>('#signin')!
const app = document.querySelector<HTMLElement>('#app')!
const rows = document.querySelector<HTMLTableSectionElement>('#files tbody')!
const filesError = document.querySelector<HTMLElement>('#files-error')!
const signoutButton = document.querySelector<HTMLButtonElement>('#signout')!

/** Every file shown, by id; ids still UPLOADING are polled until final. */
const files = new Map<string, FileView>()

function formatSize(bytes: number): string {
  if (bytes >= MiB) return `${(bytes / MiB).toFixed(1)} MiB`
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`
  return `${bytes} B`
}

function render(): void {
  const sorted = [...files.values()]
  rows.replaceChildren(
    ...sorted.map((file) => {
      const row = document.createElement('tr')
      row.dataset.fileId = file.fileId
      row.dataset.status = file.status
      const cells = [file.fileName, formatSize(file.size), file.status, file.kind ?? '', file.detectedType ?? '', file.reason ?? '']
      const names = ['name', 'size', 'status', 'kind', 'detected-type', 'reason']
      cells.forEach((text, i) => {
        const cell = document.createElement('td')
        cell.className = names[i]
        cell.textContent = text
        row.append(cell)
      })
      return row
    }),
  )
}

async function refreshList(): Promise<void> {
  const { files: listed } = await listFiles()
  for (const file of listed) files.set(file.fileId, file)
  render()
}

let polling = false
/** Follows files in flight until their verdict lands. */
async function pollPending(): Promise<void> {
  if (polling) return
  polling = true
  try {
    while ([...files.values()].some((f) => f.status === 'UPLOADING')) {
      await new Promise((resolve) => setTimeout(resolve, 1000))
      for (const file of [...files.values()].filter((f) => f.status === 'UPLOADING')) {
        try {
          files.set(file.fileId, await getFile(file.fileId))
        } catch (error) {
          if (error instanceof ApiError && error.status === 404) files.delete(file.fileId)
        }
      }
      render()
    }
  } finally {
    polling = false
  }
}

/** What complete answers; `location` is GET /files/{fileId}. */
type CompanionBody = { location?: string; key?: string; bucket?: string }

// Golden Retriever keeps files up to 10 MiB by default; larger ones would
// come back as ghosts the user must pick again. Its types list only
// name/version, but the options are passed on to its blob store as a whole.
const blobStoreLimits = { maxFileSize: 2048 * MiB, maxTotalSize: 4096 * MiB }

/** The Uppy of the signed-in user; sign-out destroys it. */
let uploader: Uppy<Meta, CompanionBody> | null = null

function startUploader(): void {
  const uppy = new Uppy<Meta, CompanionBody>({ id: 'sluice', autoProceed: true, debug: Boolean(localStorage.getItem('sluice-debug')) })
    .use(Dashboard, { target: '#uploader', inline: true, height: 360, proudlyDisplayPoweredByUppy: false })
    // Configuration only: Uppy speaks Companion's S3 protocol to our API.
    .use(AwsS3, { companionEndpoint: window.location.origin, shouldUseMultipart: true })
    // Keeps files and their upload ids across a reload, so Uppy resumes
    // from the parts S3 already holds.
    .use(GoldenRetriever, { indexedDB: blobStoreLimits as { name?: string } })

  // The size lets the API check the quota and bound part numbers up front.
  uppy.on('file-added', (file) => uppy.setFileMeta(file.id, { size: file.size ?? undefined }))
  // After a reload, carry on where the upload stopped, as the Dashboard's
  // resume button would: Uppy asks S3 (through us) which parts it holds.
  uppy.on('restored', () => {
    if (uppy.getState().recoveredState) uppy.emit('restore-confirmed')
  })
  uppy.on('upload-success', (file, response) => {
    // Companion's `location` is our GET /files/{fileId}.
    const fileId = response.body?.location?.split('/').pop()
    if (!file || !fileId) return
    files.set(fileId, { fileId, fileName: file.name ?? fileId, size: file.size ?? 0, status: 'UPLOADING' })
    render()
    void pollPending()
  })
  uppy.on('upload-error', (_file, error) => {
    filesError.textContent = error?.message ?? 'the upload failed'
  })
  uploader = uppy
}

async function showApp(): Promise<void> {
  signinForm.hidden = true
  app.hidden = false
  signoutButton.hidden = false
  startUploader()
  await refreshList()
  void pollPending()
}

signinForm.addEventListener('submit', async (event) => {
  event.preventDefault()
  const data = new FormData(signinForm)
  const email = String(data.get('email'))
  const password = String(data.get('password'))
  const action = (event.submitter as HTMLButtonElement | null)?.value
  const message = document.querySelector<HTMLElement>('#signin-error')!
  try {
    if (action === 'signup') await signUp(email, password)
    await signIn(email, password)
    message.textContent = ''
    await showApp()
  } catch (error) {
    message.textContent = error instanceof Error ? error.message : String(error)
  }
})

signoutButton.addEventListener('click', async () => {
  // First, while the cookie still authorises the aborts: cancel the uploads
  // in flight and let Golden Retriever forget them, so whoever uses this
  // browser next is not offered this user's files.
  uploader?.destroy()
  uploader = null
  try {
    await signOut()
  } catch (error) {
    filesError.textContent = error instanceof Error ? error.message : String(error)
    return
  }
  files.clear()
  render()
  filesError.textContent = ''
  signinForm.reset()
  app.hidden = true
  signoutButton.hidden = true
  signinForm.hidden = false
})

// Signed in already (the cookie is HttpOnly, so ask the API)?
listFiles()
  .then(() => showApp())
  .catch(() => {
    signinForm.hidden = false
  })
