// A local stand-in for the Hugging Face Hub (loopback only), speaking the protocol huggingface_hub
// documents: the model info endpoint, `resolve` URLs that redirect LFS files to a second "CDN"
// server, the X-Repo-Commit / ETag / X-Linked-Etag / X-Linked-Size headers, Range and 206,
// 401 for gated repos without a token, 404 for missing files. It records every request, and can
// cut a download mid-file or list a wrong sha256.
import crypto from 'node:crypto';
import http from 'node:http';

const LFS_FILE = /\.(safetensors|gguf|bin)$/;
const sha256 = (data) => crypto.createHash('sha256').update(data).digest('hex');
// A git blob id, which is what the Hub's ETag of a file kept in git is.
const gitBlobId = (data) => crypto.createHash('sha1')
  .update(Buffer.concat([Buffer.from(`blob ${data.length}\0`), data])).digest('hex');

export class HubStandIn {
  constructor() {
    this.repos = new Map();   // "org/name" → {commit, files: Map(path → Buffer), ...options}
    this.requests = [];       // {server: 'hub'|'cdn', method, url, range, authorization}
    this.token = 'hf_test_token';
    this.renamed = new Map();  // old "org/name" → the repo it is now
  }

  /**
   * Adds a repo. `files`: {path: Buffer}. Options: gated (401 without the token), missing (paths
   * listed but answered 404), wrongSha (paths listed with a wrong sha256), cutOnce (paths whose
   * first download stops halfway).
   */
  addRepo(repo, files, { gated = false, missing = [], wrongSha = [], cutOnce = [] } = {}) {
    const commit = crypto.createHash('sha1').update(repo + Object.keys(files).join()).digest('hex');
    this.repos.set(repo, {
      commit, gated, files: new Map(Object.entries(files)),
      missing: new Set(missing), wrongSha: new Set(wrongSha), cutOnce: new Set(cutOnce),
    });
    return commit;
  }

  get endpoint() { return `http://127.0.0.1:${this.hubPort}`; }

  count(server, method) {
    return this.requests.filter((r) => r.server === server && (!method || r.method === method)).length;
  }

  async start() {
    this.hub = http.createServer((req, res) => this.onHub(req, res));
    this.cdn = http.createServer((req, res) => this.onCdn(req, res));
    await Promise.all([this.hub, this.cdn].map((s) => new Promise((r) => s.listen(0, '127.0.0.1', r))));
    this.hubPort = this.hub.address().port;
    this.cdnPort = this.cdn.address().port;
  }

  async stop() {
    for (const s of [this.hub, this.cdn]) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
  }

  record(server, req) {
    this.requests.push({
      server, method: req.method, url: req.url, range: req.headers.range,
      authorization: req.headers.authorization,
    });
  }

  authorized(repo, req) {
    return !repo.gated || req.headers.authorization === `Bearer ${this.token}`;
  }

  onHub(req, res) {
    this.record('hub', req);
    const url = new URL(req.url, this.endpoint);
    // A renamed repo: its old URLs redirect (307) to the same path under the new name.
    for (const [old, now] of this.renamed) {
      for (const prefix of [`/${old}/`, `/api/models/${old}/`]) {
        if (url.pathname.startsWith(prefix)) {
          const moved = prefix.replace(old, now) + req.url.slice(prefix.length);
          res.writeHead(307, { Location: moved }).end();
          return;
        }
      }
    }
    const info = url.pathname.match(/^\/api\/models\/([^/]+\/[^/]+)\/revision\/([^/]+)$/);
    if (info) return this.modelInfo(req, res, info[1], decodeURIComponent(info[2]));
    const resolve = url.pathname.match(/^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/);
    if (resolve) return this.resolve(req, res, resolve[1], decodeURIComponent(resolve[2]), decodeURIComponent(resolve[3]));
    res.writeHead(404).end();
  }

  // The repo, or an answer already sent (401 for no such repo or a gated one, 404 for a revision).
  lookUp(req, res, name, revision) {
    const repo = this.repos.get(name);
    // Like the Hub, 401 for a repo that does not exist (it might be private), 404 for a revision.
    if (!repo) {
      res.writeHead(401, { 'X-Error-Code': 'RepoNotFound' }).end('{"error":"Repository not found"}');
      return null;
    }
    if (revision !== 'main' && revision !== repo.commit) {
      res.writeHead(404, { 'X-Error-Code': 'RevisionNotFound' }).end();
      return null;
    }
    if (!this.authorized(repo, req)) {
      res.writeHead(401, { 'X-Error-Code': 'GatedRepo' }).end('{"error":"Access to this model is restricted"}');
      return null;
    }
    return repo;
  }

  modelInfo(req, res, name, revision) {
    const repo = this.lookUp(req, res, name, revision);
    if (!repo) return;
    const siblings = [...repo.files].map(([rfilename, data]) => {
      const sibling = { rfilename, size: data.length, blobId: gitBlobId(data) };
      if (LFS_FILE.test(rfilename)) {
        const oid = repo.wrongSha.has(rfilename) ? sha256(Buffer.from('something else')) : sha256(data);
        sibling.lfs = { sha256: oid, size: data.length, pointerSize: 134 };
      }
      return sibling;
    });
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ id: name, modelId: name, sha: repo.commit, private: false, gated: repo.gated, siblings }));
  }

  resolve(req, res, name, revision, file) {
    const repo = this.lookUp(req, res, name, revision);
    if (!repo) return;
    const data = repo.files.get(file);
    if (!data || repo.missing.has(file)) {
      res.writeHead(404, { 'X-Error-Code': 'EntryNotFound', 'X-Repo-Commit': repo.commit }).end();
      return;
    }
    const headers = { 'X-Repo-Commit': repo.commit };
    if (LFS_FILE.test(file)) {
      const oid = sha256(data);
      res.writeHead(302, {
        ...headers, 'X-Linked-Etag': `"${oid}"`, 'X-Linked-Size': String(data.length),
        ETag: `"${gitBlobId(data)}"`, 'Content-Length': '0',
        Location: `http://127.0.0.1:${this.cdnPort}/repos/${oid}?file=${encodeURIComponent(file)}&repo=${name}`,
      });
      res.end();
      return;
    }
    res.writeHead(200, { ...headers, ETag: `"${gitBlobId(data)}"`, 'Content-Length': String(data.length) });
    res.end(req.method === 'HEAD' ? undefined : data);
  }

  onCdn(req, res) {
    this.record('cdn', req);
    const url = new URL(req.url, `http://127.0.0.1:${this.cdnPort}`);
    const repo = this.repos.get(url.searchParams.get('repo'));
    const file = url.searchParams.get('file');
    const data = repo?.files.get(file);
    if (!data) return res.writeHead(404).end();
    const range = /^bytes=(\d+)-$/.exec(req.headers.range || '');
    const start = range ? Number(range[1]) : 0;
    if (start >= data.length) {
      res.writeHead(416, { 'Content-Range': `bytes */${data.length}` }).end();
      return;
    }
    const body = data.subarray(start);
    res.writeHead(range ? 206 : 200, {
      'Content-Length': String(body.length), 'Accept-Ranges': 'bytes',
      ...(range ? { 'Content-Range': `bytes ${start}-${data.length - 1}/${data.length}` } : {}),
    });
    if (req.method === 'HEAD') return res.end();
    if (repo.cutOnce.delete(file)) {
      // Half the file, then the connection drops.
      res.write(body.subarray(0, Math.floor(body.length / 2)), () => res.socket.destroy());
      return;
    }
    res.end(body);
  }
}
