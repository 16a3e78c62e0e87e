// A stand-in daemon for the build bench's floor row: it answers /_ping,
// /version and POST /build at once (the context is read and dropped, the
// answer is a fixed image ID), so the docker CLI's own share of a no-op
// rebuild (start-up, tarring and sending the context) is timed alone.
// usage: node clifloor.mjs SOCKET
import fs from 'node:fs';
import http from 'node:http';

const sock = process.argv[2];
fs.rmSync(sock, { force: true });
const ID = 'sha256:' + '0'.repeat(64);
const headers = { 'Api-Version': '1.41', Ostype: 'linux', 'Builder-Version': '1' };

http
  .createServer((req, res) => {
    const json = (body) => {
      res.writeHead(200, { ...headers, 'Content-Type': 'application/json' });
      res.end(body);
    };
    if (req.url.includes('/_ping')) {
      res.writeHead(200, { ...headers, 'Content-Type': 'text/plain' });
      res.end(req.method === 'HEAD' ? undefined : 'OK');
    } else if (req.url.includes('/build')) {
      req.resume();
      req.on('end', () => json(`{"aux":{"ID":"${ID}"}}\r\n`));
    } else if (req.url.includes('/version')) {
      json(
        JSON.stringify({ Version: '20.10.24', ApiVersion: '1.41', MinAPIVersion: '1.12', Os: 'linux', Arch: process.arch === 'x64' ? 'amd64' : process.arch }),
      );
    } else {
      res.writeHead(404, { ...headers, 'Content-Type': 'application/json' });
      res.end('{"message":"page not found"}');
    }
  })
  .listen(sock);
