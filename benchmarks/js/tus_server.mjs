// The official tus server (@tus/server + @tus/file-store), as the benchmarks' baseline.
// usage: node tus_server.mjs <directory> <port>
import http from 'node:http'
import { Server } from '@tus/server'
import { FileStore } from '@tus/file-store'

const [directory, port] = process.argv.slice(2)
const tus = new Server({ path: '/files', datastore: new FileStore({ directory }) })
http.createServer((req, res) => tus.handle(req, res)).listen(Number(port), '127.0.0.1')
