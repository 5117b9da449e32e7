// Parsing an uploaded PKCS#10 request in the browser and applying the local
// mirror of the server's CSR policy (signer/csr.go): the same rules, in the
// same order, with the same names. The server still decides.
import "reflect-metadata"; // @peculiar/x509 (tsyringe) needs it loaded first
import * as x509 from "@peculiar/x509";
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import type { Problem } from "./identity";
import { checkIdentities } from "./identity";

/** The largest upload the server accepts (signer.MaxCSRSize). */
export const MAX_CSR_SIZE = 64 << 10;

/** What the browser learned from a CSR. */
export interface CSRInfo {
  /** The PEM to send to the server (DER uploads are converted). */
  pem: string;
  subject: string;
  sans: string[];
  /** e.g. "ECDSA P-256", "RSA 3072", "Ed25519". */
  keyType: string;
  signatureAlgorithm: string;
  /** Whether the self-signature verified; null when this browser cannot check it. */
  signatureValid: boolean | null;
  problems: Problem[];
}

const SIG_NAMES: Record<string, string> = {
  "1.2.840.113549.1.1.2": "MD2-RSA",
  "1.2.840.113549.1.1.4": "MD5-RSA",
  "1.2.840.113549.1.1.5": "SHA1-RSA",
  "1.2.840.113549.1.1.11": "SHA256-RSA",
  "1.2.840.113549.1.1.12": "SHA384-RSA",
  "1.2.840.113549.1.1.13": "SHA512-RSA",
  "1.2.840.113549.1.1.10": "RSASSA-PSS",
  "1.2.840.10045.4.1": "ECDSA-SHA1",
  "1.2.840.10045.4.3.2": "ECDSA-SHA256",
  "1.2.840.10045.4.3.3": "ECDSA-SHA384",
  "1.2.840.10045.4.3.4": "ECDSA-SHA512",
  "1.2.840.10040.4.3": "DSA-SHA1",
  "1.3.101.112": "Ed25519",
};
const SIG_OK = new Set([
  "1.2.840.113549.1.1.11",
  "1.2.840.113549.1.1.12",
  "1.2.840.113549.1.1.13",
  "1.2.840.113549.1.1.10",
  "1.2.840.10045.4.3.2",
  "1.2.840.10045.4.3.3",
  "1.2.840.10045.4.3.4",
  "1.3.101.112",
]);
const SIG_BROKEN = new Set(["1.2.840.113549.1.1.2", "1.2.840.113549.1.1.4", "1.2.840.113549.1.1.5", "1.2.840.10045.4.1", "1.2.840.10040.4.3"]);

const CURVES: Record<string, string> = {
  "1.2.840.10045.3.1.7": "P-256",
  "1.3.132.0.34": "P-384",
  "1.3.132.0.35": "P-521",
  "1.3.132.0.10": "secp256k1",
};
const OID_EC = "1.2.840.10045.2.1";
const OID_RSA = "1.2.840.113549.1.1.1";
const OID_ED25519 = "1.3.101.112";
const OID_ED448 = "1.3.101.113";
const OID_BASIC_CONSTRAINTS = "2.5.29.19";
const OID_KEY_USAGE = "2.5.29.15";
const OID_EXTENSION_REQUEST = "1.2.840.113549.1.9.14";

const problem = (rule: string, reason: string): Problem => ({ rule, reason });

/** ParseResult is a parsed CSR, or the first rule that refused the upload. */
export type ParseResult = { ok: true; info: CSRInfo } | { ok: false; problem: Problem };

/** decodeUpload turns pasted text or file bytes into DER, as the server's "size" and "encoding" rules do. */
export function decodeUpload(input: string | Uint8Array): { der: Uint8Array } | { problem: Problem } {
  const bytes = typeof input === "string" ? new TextEncoder().encode(input) : input;
  if (bytes.length === 0 || (typeof input === "string" && input.trim() === "")) {
    return { problem: problem("size", "the upload is empty; paste or upload a PEM or DER PKCS#10 request") };
  }
  if (bytes.length > MAX_CSR_SIZE) {
    return { problem: problem("size", `the upload is ${bytes.length} bytes; a CSR may be at most ${MAX_CSR_SIZE} bytes`) };
  }
  const text = typeof input === "string" ? input : latin1(bytes);
  const trimmed = text.trim();
  if (!trimmed.startsWith("-----BEGIN")) {
    if (bytes[0] === 0x30) return { der: bytes };
    return { problem: problem("encoding", "this is neither PEM nor DER; expected a PEM block beginning with -----BEGIN CERTIFICATE REQUEST-----") };
  }
  const blocks = [...trimmed.matchAll(/-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g)];
  if (blocks.length === 0) return { problem: problem("encoding", "the PEM block is damaged and cannot be decoded") };
  const [first] = blocks;
  if (first[1] !== "CERTIFICATE REQUEST" && first[1] !== "NEW CERTIFICATE REQUEST") {
    return { problem: problem("encoding", `found a PEM block of type "${first[1]}"; expected CERTIFICATE REQUEST`) };
  }
  if (blocks.length > 1) return { problem: problem("encoding", "the upload contains more than one PEM block; upload exactly one CSR") };
  if (trimmed.slice((first.index ?? 0) + first[0].length).trim() !== "") {
    return { problem: problem("encoding", "there is unexpected data after the CSR's PEM block") };
  }
  const body = first[2].replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body)) return { problem: problem("encoding", "the PEM block is damaged and cannot be decoded") };
  try {
    return { der: base64Decode(body) };
  } catch {
    return { problem: problem("encoding", "the PEM block is damaged and cannot be decoded") };
  }
}

/**
 * parseCSR parses an upload and applies the local policy. A refusal by the
 * decoding rules (size, encoding, syntax) ends parsing; later rules add
 * problems to an info that is still shown to the user.
 */
export async function parseCSR(input: string | Uint8Array): Promise<ParseResult> {
  const decoded = decodeUpload(input);
  if ("problem" in decoded) return { ok: false, problem: decoded.problem };
  const der = decoded.der;

  let raw: pkijs.CertificationRequest;
  let csr: x509.Pkcs10CertificateRequest;
  try {
    const asn = asn1js.fromBER(toArrayBuffer(der));
    if (asn.offset === -1 || asn.offset !== der.byteLength) throw new Error("trailing or broken DER");
    raw = new pkijs.CertificationRequest({ schema: asn.result });
    csr = new x509.Pkcs10CertificateRequest(toArrayBuffer(der));
  } catch {
    return { ok: false, problem: problem("syntax", "not a valid PKCS#10 request: the DER structure cannot be parsed") };
  }

  const problems: Problem[] = [];
  const sigOID = raw.signatureAlgorithm.algorithmId;
  const signatureAlgorithm = SIG_NAMES[sigOID] ?? sigOID;
  if (SIG_BROKEN.has(sigOID)) {
    problems.push(problem("signature-algorithm", `the CSR is signed with ${signatureAlgorithm}; MD5 and SHA-1 are broken, sign it with SHA-256 or better`));
  } else if (!SIG_OK.has(sigOID)) {
    problems.push(problem("signature-algorithm", `the CSR's signature algorithm (${signatureAlgorithm}) is not accepted; use ECDSA, RSA or Ed25519 with SHA-256 or better`));
  }

  const { keyType, keyProblem } = describeKey(raw.subjectPublicKeyInfo);
  if (keyProblem) problems.push(problem("key-type", keyProblem));

  let signatureValid: boolean | null = null;
  try {
    signatureValid = await csr.verify();
  } catch {
    signatureValid = null; // this browser lacks the algorithm; the server checks it
  }
  if (signatureValid === false) {
    problems.push(problem("proof-of-possession", "the CSR's self-signature does not verify, so it does not prove possession of the private key"));
  }

  problems.push(...checkExtensions(raw));

  let sans: string[] = [];
  try {
    const ext = csr.extensions.find((e): e is x509.SubjectAlternativeNameExtension => e instanceof x509.SubjectAlternativeNameExtension);
    sans = ext ? ext.names.items.map((n) => n.value) : [];
  } catch {
    problems.push(problem("extensions", "the subjectAltName extension cannot be parsed"));
  }
  if (sans.length > 0) {
    for (const p of checkIdentities(sans)) problems.push(problem("requested-names", p.reason));
  }

  return {
    ok: true,
    info: {
      pem: x509.PemConverter.encode(toArrayBuffer(der), "CERTIFICATE REQUEST"),
      subject: csr.subject,
      sans,
      keyType,
      signatureAlgorithm,
      signatureValid,
      problems,
    },
  };
}

function describeKey(spki: pkijs.PublicKeyInfo): { keyType: string; keyProblem?: string } {
  const oid = spki.algorithm.algorithmId;
  if (oid === OID_EC) {
    const params = spki.algorithm.algorithmParams as asn1js.ObjectIdentifier | undefined;
    const curveOID = params instanceof asn1js.ObjectIdentifier ? params.valueBlock.toString() : "unknown";
    const curve = CURVES[curveOID] ?? curveOID;
    const keyType = `ECDSA ${curve}`;
    if (curve === "P-256" || curve === "P-384") return { keyType };
    return { keyType, keyProblem: `ECDSA curve ${curve} is not accepted; use P-256 or P-384` };
  }
  if (oid === OID_ED25519) return { keyType: "Ed25519" };
  if (oid === OID_RSA) {
    try {
      const key = spki.parsedKey as pkijs.RSAPublicKey;
      const bits = bitLength(key.modulus.valueBlock.valueHexView);
      const e = bigOf(key.publicExponent.valueBlock.valueHexView);
      const keyType = `RSA ${bits}`;
      if (bits < 3072) return { keyType, keyProblem: `RSA key of ${bits} bits is too small; the minimum is 3072 bits (ECDSA P-256 is faster and smaller)` };
      if (bits > 8192) return { keyType, keyProblem: `RSA key of ${bits} bits is larger than the 8192-bit maximum` };
      if (e !== 65537n) return { keyType, keyProblem: `RSA public exponent ${e} is not accepted; use 65537` };
      return { keyType };
    } catch {
      return { keyType: "RSA (unreadable)", keyProblem: "the RSA public key cannot be parsed" };
    }
  }
  const name = oid === OID_ED448 ? "Ed448" : oid;
  return { keyType: name, keyProblem: `key algorithm ${name} is not accepted; use ECDSA P-256 or P-384, Ed25519, or RSA 3072+` };
}

// checkExtensions mirrors the server: no duplicated extension (RFC 5280 §4.2)
// and no request for CA powers (basicConstraints cA, keyCertSign/cRLSign).
function checkExtensions(raw: pkijs.CertificationRequest): Problem[] {
  const out: Problem[] = [];
  const attr = raw.attributes?.find((a) => a.type === OID_EXTENSION_REQUEST);
  if (!attr || attr.values.length === 0) return out;
  let exts: pkijs.Extensions;
  try {
    exts = new pkijs.Extensions({ schema: attr.values[0] });
  } catch {
    return [problem("extensions", "the requested extensions cannot be parsed")];
  }
  const seen = new Set<string>();
  for (const ext of exts.extensions) {
    if (seen.has(ext.extnID)) out.push(problem("extensions", `extension ${ext.extnID} is requested more than once`));
    seen.add(ext.extnID);
    if (ext.extnID === OID_BASIC_CONSTRAINTS) {
      const bc = ext.parsedValue as pkijs.BasicConstraints | undefined;
      if (bc?.cA) out.push(problem("extensions", "the CSR asks to be a CA (basicConstraints cA=TRUE); client certificates are never CAs"));
    }
    if (ext.extnID === OID_KEY_USAGE) {
      const ku = ext.parsedValue as asn1js.BitString | undefined;
      const bits = ku?.valueBlock?.valueHexView;
      // keyCertSign is bit 5 (0x04), cRLSign bit 6 (0x02) of the first byte (RFC 5280 §4.2.1.3).
      if (bits && bits.length > 0 && (bits[0] & 0x06) !== 0) {
        out.push(problem("extensions", "the CSR asks for keyCertSign or cRLSign key usage, which only a CA may have"));
      }
    }
  }
  return out;
}

function bitLength(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length && bytes[i] === 0) i++;
  if (i === bytes.length) return 0;
  return (bytes.length - i - 1) * 8 + (32 - Math.clz32(bytes[i]));
}

function bigOf(bytes: Uint8Array): bigint {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return v;
}

function latin1(bytes: Uint8Array): string {
  let s = "";
  const n = Math.min(bytes.length, MAX_CSR_SIZE);
  for (let i = 0; i < n; i++) s += String.fromCharCode(bytes[i]);
  return s;
}

/** base64Decode decodes standard base64 (throws on bad input). */
export function base64Decode(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** toArrayBuffer copies a view into a standalone ArrayBuffer. */
export function toArrayBuffer(u: Uint8Array): ArrayBuffer {
  const out = new ArrayBuffer(u.byteLength);
  new Uint8Array(out).set(u);
  return out;
}
