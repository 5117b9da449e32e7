// Browser-generated private keys wait here, keyed by request id, until the
// user downloads them. IndexedDB keeps CryptoKey objects as they are (the key
// bytes never pass through JavaScript strings); memory is the fallback.

const DB = "certdesk-keys";
const STORE = "keys";
const memory = new Map<string, CryptoKeyPair>();

function open(): Promise<IDBDatabase | null> {
  if (typeof indexedDB === "undefined") return Promise.resolve(null);
  return new Promise((resolve) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => resolve(null);
  });
}

async function run<T>(mode: IDBTransactionMode, f: (s: IDBObjectStore) => IDBRequest<T>): Promise<T | undefined> {
  const db = await open();
  if (!db) return undefined;
  return new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, mode);
    const r = f(tx.objectStore(STORE));
    tx.oncomplete = () => {
      db.close();
      resolve(r.result);
    };
    tx.onerror = () => {
      db.close();
      reject(tx.error);
    };
  });
}

/** saveKey keeps a generated key pair for a request. */
export async function saveKey(requestId: string, keys: CryptoKeyPair): Promise<void> {
  memory.set(requestId, keys);
  try {
    await run("readwrite", (s) => s.put({ privateKey: keys.privateKey, publicKey: keys.publicKey, saved: new Date().toISOString() }, requestId));
  } catch {
    /* memory only: the key lives until the tab closes */
  }
}

/** loadKey finds the key pair generated for a request, if this browser has it. */
export async function loadKey(requestId: string): Promise<CryptoKeyPair | null> {
  const m = memory.get(requestId);
  if (m) return m;
  try {
    const v = (await run("readonly", (s) => s.get(requestId))) as CryptoKeyPair | undefined;
    return v?.privateKey ? { privateKey: v.privateKey, publicKey: v.publicKey } : null;
  } catch {
    return null;
  }
}

/** forgetKey deletes a stored key (after download, when the user asks). */
export async function forgetKey(requestId: string): Promise<void> {
  memory.delete(requestId);
  try {
    await run("readwrite", (s) => s.delete(requestId));
  } catch {
    /* nothing stored */
  }
}
