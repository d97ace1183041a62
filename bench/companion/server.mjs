// Uppy Companion as its docs set it up (express, companion.app), with only
// its S3 routes in use, pointed at the benchmark's local S3.
// Listens on loopback; prints `listening <port>` once ready.
import fs from 'node:fs'
import express from 'express'
import * as companion from '@uppy/companion'

const need = (name) => {
  const value = process.env[name]
  if (!value) {
    console.error(`${name} is not set`)
    process.exit(2)
  }
  return value
}

const filePath = need('COMPANION_FILE_PATH')
fs.mkdirSync(filePath, { recursive: true })

const app = express()
app.use(express.json())
const { app: companionApp } = companion.app({
  secret: 'sluice-bench-companion',
  filePath,
  server: { host: '127.0.0.1', protocol: 'http' },
  s3: {
    endpoint: need('COMPANION_S3_ENDPOINT'),
    bucket: need('COMPANION_S3_BUCKET'),
    region: need('COMPANION_S3_REGION'),
    key: need('COMPANION_S3_KEY'),
    secret: need('COMPANION_S3_SECRET'),
    forcePathStyle: true,
    expires: 900,
  },
  corsOrigins: false,
  // Only remote-provider uploads use it; the S3 routes never do.
  uploadUrls: ['http://127.0.0.1/'],
  logClientVersion: false,
})
app.use(companionApp)

const server = app.listen(0, '127.0.0.1', () => {
  console.log(`listening ${server.address().port}`)
})
