// Exporting a browser-held private key: encrypted PKCS#8 (PBES2, PBKDF2 with
// HMAC-SHA-256 and AES-256-CBC, RFC 8018) or a PKCS#12 bundle (RFC 7292) with
// the key, the certificate and its chain. Everything runs locally.
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import { base64Decode, toArrayBuffer } from "./csr";

/** PBKDF2 iterations for downloads: OpenSSL 3's default for PKCS#12 is 2048; we use more. */
export const KDF_ITERATIONS = 100_000;

/**
 * MAC_ITERATIONS is the PKCS#12 integrity KDF's count (RFC 7292 appendix B),
 * OpenSSL 3's default. That KDF runs one digest per round in JavaScript, so a
 * large count costs seconds; the key itself is protected by PBKDF2 above.
 */
export const MAC_ITERATIONS = 2048;


const OID_LOCAL_KEY_ID = "1.2.840.113549.1.9.21";
const OID_FRIENDLY_NAME = "1.2.840.113549.1.9.20";
const OID_KEY_BAG_SHROUDED = "1.2.840.113549.1.12.10.1.2";
const OID_CERT_BAG = "1.2.840.113549.1.12.10.1.3";

function engine(crypto: Crypto): pkijs.ICryptoEngine {
  return new pkijs.CryptoEngine({ name: "webcrypto", crypto });
}

function passwordBuffer(passphrase: string): ArrayBuffer {
  return toArrayBuffer(new TextEncoder().encode(passphrase));
}

type EncryptionParams = Parameters<pkijs.PKCS8ShroudedKeyBag["makeInternalValues"]>[0];

// AES-256-CBC under PBES2; pkijs picks the IV itself.
const encryption = (password: ArrayBuffer): EncryptionParams => ({
  password,
  contentEncryptionAlgorithm: { name: "AES-CBC", length: 256 } as unknown as EncryptionParams["contentEncryptionAlgorithm"],
  hmacHashAlgorithm: "SHA-256",
  iterationCount: KDF_ITERATIONS,
});

// parseInternalValues is public in the JavaScript but typed protected.
type Openable = { parseInternalValues(p: { password: ArrayBuffer }, c: pkijs.ICryptoEngine): Promise<void> };

/** pem wraps DER in a PEM block with 64-character lines. */
export function pem(label: string, der: ArrayBuffer | Uint8Array): string {
  const bytes = der instanceof Uint8Array ? der : new Uint8Array(der);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  const b64 = btoa(bin).replace(/.{64}/g, "$&\n").replace(/\n$/, "");
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

/** pemBlocks returns the DER of every PEM block with the given label, in order. */
export function pemBlocks(text: string, label: string): Uint8Array[] {
  const re = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`, "g");
  return [...text.matchAll(re)].map((m) => base64Decode(m[1].replace(/\s+/g, "")));
}

/** encryptPrivateKey returns the key as an "ENCRYPTED PRIVATE KEY" PEM protected by passphrase. */
export async function encryptPrivateKey(key: CryptoKey, passphrase: string, crypto: Crypto = globalThis.crypto): Promise<string> {
  const pkcs8 = await crypto.subtle.exportKey("pkcs8", key);
  const bag = new pkijs.PKCS8ShroudedKeyBag({ parsedValue: pkijs.PrivateKeyInfo.fromBER(pkcs8) });
  await bag.makeInternalValues(encryption(passwordBuffer(passphrase)), engine(crypto));
  return pem("ENCRYPTED PRIVATE KEY", bag.toSchema().toBER(false));
}

/** decryptPrivateKey opens an "ENCRYPTED PRIVATE KEY" PEM and returns the PKCS#8 DER (used by tests and by re-download). */
export async function decryptPrivateKey(pemText: string, passphrase: string, crypto: Crypto = globalThis.crypto): Promise<ArrayBuffer> {
  const [der] = pemBlocks(pemText, "ENCRYPTED PRIVATE KEY");
  if (!der) throw new Error("no ENCRYPTED PRIVATE KEY block");
  const bag = pkijs.PKCS8ShroudedKeyBag.fromBER(toArrayBuffer(der));
  await (bag as unknown as Openable).parseInternalValues({ password: passwordBuffer(passphrase) }, engine(crypto));
  return bag.parsedValue!.toSchema().toBER(false);
}

/**
 * buildPKCS12 makes a PKCS#12 file holding the key (shrouded), the leaf
 * certificate and the chain (leaf first in chainPem or separately), with a
 * password MAC. OpenSSL 3 and browsers open it.
 */
export async function buildPKCS12(
  key: CryptoKey,
  chainPem: string,
  passphrase: string,
  friendlyName = "certdesk client",
  crypto: Crypto = globalThis.crypto,
): Promise<Uint8Array<ArrayBuffer>> {
  const ders = pemBlocks(chainPem, "CERTIFICATE");
  if (ders.length === 0) throw new Error("the chain holds no certificate");
  const certs = ders.map((d) => pkijs.Certificate.fromBER(toArrayBuffer(d)));
  const password = passwordBuffer(passphrase);
  const localKeyId = new Uint8Array(await crypto.subtle.digest("SHA-1", toArrayBuffer(ders[0])));
  const attrs = () => [
    new pkijs.Attribute({ type: OID_LOCAL_KEY_ID, values: [new asn1js.OctetString({ valueHex: toArrayBuffer(localKeyId) })] }),
    new pkijs.Attribute({ type: OID_FRIENDLY_NAME, values: [new asn1js.BmpString({ value: friendlyName })] }),
  ];

  const pkcs8 = await crypto.subtle.exportKey("pkcs8", key);
  const keyBag = new pkijs.PKCS8ShroudedKeyBag({ parsedValue: pkijs.PrivateKeyInfo.fromBER(pkcs8) });
  const eng = engine(crypto);
  await keyBag.makeInternalValues(encryption(password), eng);

  const certBags = certs.map(
    (c, i) =>
      new pkijs.SafeBag({
        bagId: OID_CERT_BAG,
        bagValue: new pkijs.CertBag({ parsedValue: c }),
        bagAttributes: i === 0 ? attrs() : undefined,
      }),
  );
  const pfx = new pkijs.PFX({
    parsedValue: {
      integrityMode: 0,
      authenticatedSafe: new pkijs.AuthenticatedSafe({
        parsedValue: {
          safeContents: [
            { privacyMode: 0, value: new pkijs.SafeContents({ safeBags: [new pkijs.SafeBag({ bagId: OID_KEY_BAG_SHROUDED, bagValue: keyBag, bagAttributes: attrs() })] }) },
            { privacyMode: 1, value: new pkijs.SafeContents({ safeBags: certBags }) },
          ],
        },
      }),
    },
  });
  await pfx.parsedValue!.authenticatedSafe!.makeInternalValues({ safeContents: [{}, encryption(password)] }, eng);
  await pfx.makeInternalValues({ password, iterations: MAC_ITERATIONS, pbkdf2HashAlgorithm: "SHA-256", hmacHashAlgorithm: "SHA-256" }, eng);
  return new Uint8Array(pfx.toSchema().toBER(false));
}

/** OpenedPKCS12 is what a PKCS#12 file held. */
export interface OpenedPKCS12 {
  keyPkcs8: ArrayBuffer | null;
  certificates: ArrayBuffer[];
}

/** openPKCS12 checks the MAC, decrypts and lists the contents (used by tests). */
export async function openPKCS12(der: Uint8Array, passphrase: string, crypto: Crypto = globalThis.crypto): Promise<OpenedPKCS12> {
  const password = passwordBuffer(passphrase);
  const eng = engine(crypto);
  const pfx = pkijs.PFX.fromBER(toArrayBuffer(der));
  await pfx.parseInternalValues({ password, checkIntegrity: true }, eng);
  const safe = pfx.parsedValue!.authenticatedSafe!;
  await safe.parseInternalValues({ safeContents: safe.safeContents.map(() => ({ password })) }, eng);
  const out: OpenedPKCS12 = { keyPkcs8: null, certificates: [] };
  for (const sc of safe.parsedValue!.safeContents) {
    for (const bag of sc.value.safeBags) {
      if (bag.bagValue instanceof pkijs.PKCS8ShroudedKeyBag) {
        await (bag.bagValue as unknown as Openable).parseInternalValues({ password }, eng);
        out.keyPkcs8 = bag.bagValue.parsedValue!.toSchema().toBER(false);
      } else if (bag.bagValue instanceof pkijs.CertBag) {
        const c = bag.bagValue.parsedValue as pkijs.Certificate;
        out.certificates.push(c.toSchema().toBER(false));
      }
    }
  }
  return out;
}
