// verify.js checks, in the browser, that a usage record's entry is in a
// broker's audit log: the checkpoint's Ed25519 signature under a verifier
// key the reader supplies (C2SP signed-note), and the RFC 6962 inclusion
// proof of the entry in the tree the checkpoint commits to (C2SP
// tlog-proof). It trusts nothing the broker says but the bytes it checks.
"use strict";

const enc = new TextEncoder();

function b64(s) {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) throw new Error(`not base64: ${s.slice(0, 20)}…`);
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

function equal(a, b) {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

async function sha256(bytes) { return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)); }

// parseVerifierKey reads "<name>+<hash hex>+<base64(0x01 || key)>".
async function parseVerifierKey(vkey) {
  const m = /^([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/=]+)$/.exec(vkey.trim());
  if (!m) throw new Error("the verifier key is not NAME+HASH+KEY");
  const raw = b64(m[3]);
  if (raw.length !== 33 || raw[0] !== 1) throw new Error("the verifier key is not an Ed25519 key");
  const hash = (await sha256(concat(enc.encode(m[1] + "\n"), raw))).slice(0, 4);
  const hex = [...hash].map((b) => b.toString(16).padStart(2, "0")).join("");
  if (hex !== m[2]) throw new Error("the verifier key's hash does not match its key");
  const key = await crypto.subtle.importKey("raw", raw.slice(1), { name: "Ed25519" }, false, ["verify"]);
  return { name: m[1], hash, key };
}

// openCheckpoint verifies a signed checkpoint and returns {origin, size, root}.
async function openCheckpoint(note, vk) {
  const split = note.lastIndexOf("\n\n");
  if (split < 0 || !note.endsWith("\n")) throw new Error("the checkpoint is not a signed note");
  const text = note.slice(0, split + 1);
  let signed = false;
  for (const line of note.slice(split + 2, -1).split("\n")) {
    const m = /^— (\S+) ([A-Za-z0-9+/=]+)$/.exec(line);
    if (!m) throw new Error("a signature line of the checkpoint is malformed");
    if (m[1] !== vk.name) continue;
    const sig = b64(m[2]);
    if (sig.length !== 68 || !equal(sig.slice(0, 4), vk.hash)) continue;
    if (await crypto.subtle.verify({ name: "Ed25519" }, vk.key, sig.slice(4), enc.encode(text))) signed = true;
  }
  if (!signed) throw new Error(`the checkpoint carries no valid signature by ${vk.name}`);
  const lines = text.slice(0, -1).split("\n");
  if (lines.length < 3 || !/^(0|[1-9][0-9]*)$/.test(lines[1])) throw new Error("the checkpoint's body is malformed");
  const root = b64(lines[2]);
  if (root.length !== 32) throw new Error("the checkpoint's root hash is not 32 bytes");
  return { origin: lines[0], size: BigInt(lines[1]), root };
}

// parseProof reads a C2SP tlog-proof: header, optional extra, index, hashes,
// a blank line, then the checkpoint.
function parseProof(text) {
  const split = text.indexOf("\n\n");
  if (split < 0) throw new Error("the receipt has no checkpoint");
  const head = text.slice(0, split).split("\n");
  if (head[0] !== "c2sp.org/tlog-proof@v1") throw new Error("the receipt is not a c2sp.org/tlog-proof@v1");
  let i = 1;
  if (head[i] && head[i].startsWith("extra ")) i++;
  const m = /^index (0|[1-9][0-9]*)$/.exec(head[i] || "");
  if (!m) throw new Error("the receipt has no index");
  const hashes = head.slice(i + 1).map((h) => {
    const b = b64(h);
    if (b.length !== 32) throw new Error("a proof hash is not 32 bytes");
    return b;
  });
  return { index: BigInt(m[1]), hashes, checkpoint: text.slice(split + 2) };
}

// verifyInclusion follows RFC 9162 §2.1.3.2.
async function verifyInclusion(index, size, leaf, proof, root) {
  if (index >= size) throw new Error(`index ${index} is not below the tree size ${size}`);
  let fn = index, sn = size - 1n, r = leaf;
  for (const p of proof) {
    if (sn === 0n) throw new Error("the inclusion proof is too long");
    if ((fn & 1n) === 1n || fn === sn) {
      r = await sha256(concat(new Uint8Array([1]), p, r));
      while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
    } else {
      r = await sha256(concat(new Uint8Array([1]), r, p));
    }
    fn >>= 1n; sn >>= 1n;
  }
  if (sn !== 0n || !equal(r, root)) throw new Error("the inclusion proof does not lead to the checkpoint's root");
}

// verifyReceipt checks that entry (a string) is in the log the receipt's
// checkpoint commits to, that checkpoint signed under vkey.
export async function verifyReceipt(receipt, entry, vkey) {
  const vk = await parseVerifierKey(vkey);
  const p = parseProof(receipt);
  const c = await openCheckpoint(p.checkpoint, vk);
  const leaf = await sha256(concat(new Uint8Array([0]), enc.encode(entry)));
  await verifyInclusion(p.index, c.size, leaf, p.hashes, c.root);
  return { origin: c.origin, size: c.size, index: p.index };
}

// verifyConsistency follows RFC 9162 §2.1.4.2: the tree of size `second`
// with root `secondRoot` extends the one of size `first` with `firstRoot`.
async function verifyConsistency(first, second, proof, firstRoot, secondRoot) {
  if (first > second) throw new Error(`the log went backwards, from ${first} to ${second} entries`);
  if (first === second) {
    if (proof.length !== 0 || !equal(firstRoot, secondRoot)) throw new Error("two checkpoints of one size with different roots");
    return;
  }
  if (first === 0n) { if (proof.length !== 0) throw new Error("a proof from the empty log must be empty"); return; }
  let p = proof;
  if ((first & (first - 1n)) === 0n) p = [firstRoot, ...proof];
  if (p.length === 0) throw new Error("the consistency proof is empty");
  let fn = first - 1n, sn = second - 1n;
  while ((fn & 1n) === 1n) { fn >>= 1n; sn >>= 1n; }
  let fr = p[0], sr = p[0];
  for (const c of p.slice(1)) {
    if (sn === 0n) throw new Error("the consistency proof is too long");
    if ((fn & 1n) === 1n || fn === sn) {
      fr = await sha256(concat(new Uint8Array([1]), c, fr));
      sr = await sha256(concat(new Uint8Array([1]), c, sr));
      while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
    } else {
      sr = await sha256(concat(new Uint8Array([1]), sr, c));
    }
    fn >>= 1n; sn >>= 1n;
  }
  if (sn !== 0n || !equal(fr, firstRoot) || !equal(sr, secondRoot)) throw new Error("the consistency proof does not join the two checkpoints: the log was rewritten");
}

// checkCheckpoint verifies a signed checkpoint under vkey.
export async function checkCheckpoint(note, vkey) {
  return openCheckpoint(note, await parseVerifierKey(vkey));
}

// checkConsistency verifies both checkpoints under vkey and that the newer
// extends the older by the proof (base64 hashes).
export async function checkConsistency(oldNote, newNote, proof, vkey) {
  const vk = await parseVerifierKey(vkey);
  const a = await openCheckpoint(oldNote, vk);
  const b = await openCheckpoint(newNote, vk);
  if (a.origin !== b.origin) throw new Error(`checkpoints of two logs: ${a.origin} and ${b.origin}`);
  const hashes = proof.map((h) => { const x = b64(h); if (x.length !== 32) throw new Error("a proof hash is not 32 bytes"); return x; });
  await verifyConsistency(a.size, b.size, hashes, a.root, b.root);
  return { origin: b.origin, from: a.size, to: b.size };
}
