// Drives tus-js-client (the real client, from npm) for the test suite.
// argv[2]: JSON {endpoint, path, chunkSize, parallelUploads, metadata, headers, storage, resume}
// stdout: JSON lines: {"event":"progress","sent":n,"total":n}, {"event":"resumed","offset":n},
//         then {"event":"success","url":...,"assetId":...,"token":...} or {"event":"error","message":...}
import fs from 'node:fs'
import * as tus from 'tus-js-client'

const cfg = JSON.parse(process.argv[2])
const size = fs.statSync(cfg.path).size
const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
const completion = {}

const options = {
  endpoint: cfg.endpoint,
  chunkSize: cfg.chunkSize ?? Infinity,
  parallelUploads: cfg.parallelUploads ?? 1,
  metadata: cfg.metadata ?? {},
  headers: cfg.headers ?? {},
  retryDelays: cfg.retryDelays ?? [0, 200, 500],
  removeFingerprintOnSuccess: false,
  onProgress: (sent, total) => emit({ event: 'progress', sent, total }),
  onAfterResponse: (req, res) => {
    if (req.getMethod() === 'HEAD') emit({ event: 'resumed', offset: Number(res.getHeader('Upload-Offset')) })
    for (const name of ['Asset-Id', 'Asset-Token', 'Asset-Token-Url']) {
      const value = res.getHeader(name)
      if (value) completion[name] = value
    }
  },
  onError: (err) => { emit({ event: 'error', message: String(err) }); process.exit(2) },
  onSuccess: () => {
    emit({ event: 'success', url: upload.url, assetId: completion['Asset-Id'] ?? null,
           token: completion['Asset-Token'] ?? null, tokenUrl: completion['Asset-Token-Url'] ?? null })
  },
}
if (cfg.storage) {
  options.urlStorage = new tus.FileUrlStorage(cfg.storage)
  options.fingerprint = async () => `gateway-test-${cfg.path}-${size}`
}
// A stream is what a CLI would send; parallel uploads need random access, so they get a Buffer.
const input = options.parallelUploads > 1 || !Number.isFinite(options.chunkSize)
  ? fs.readFileSync(cfg.path)
  : fs.createReadStream(cfg.path)
if (!(options.parallelUploads > 1)) options.uploadSize = size
const upload = new tus.Upload(input, options)
if (cfg.resume) {
  const previous = await upload.findPreviousUploads()
  if (previous.length) upload.resumeFromPreviousUpload(previous[0])
}
upload.start()
