// Generating a key pair and a CSR in the browser with WebCrypto. The private
// key is created extractable only so the user can download it encrypted; it
// is never sent to the server.
import "reflect-metadata"; // @peculiar/x509 (tsyringe) needs it loaded first
import * as x509 from "@peculiar/x509";

/** The key types the generate flow offers; all are accepted by the server. */
export type KeyChoice = "ECDSA P-256" | "ECDSA P-384" | "RSA 3072";

/** KEY_CHOICES lists the choices, the default first. */
export const KEY_CHOICES: KeyChoice[] = ["ECDSA P-256", "ECDSA P-384", "RSA 3072"];

function algorithms(choice: KeyChoice): { gen: RsaHashedKeyGenParams | EcKeyGenParams; sign: Algorithm | EcdsaParams } {
  switch (choice) {
    case "ECDSA P-384":
      return { gen: { name: "ECDSA", namedCurve: "P-384" }, sign: { name: "ECDSA", hash: "SHA-384" } as EcdsaParams };
    case "RSA 3072":
      return {
        gen: { name: "RSASSA-PKCS1-v1_5", modulusLength: 3072, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
        sign: { name: "RSASSA-PKCS1-v1_5" },
      };
    default:
      return { gen: { name: "ECDSA", namedCurve: "P-256" }, sign: { name: "ECDSA", hash: "SHA-256" } as EcdsaParams };
  }
}

/** Generated is a fresh key pair and its CSR (PEM). */
export interface Generated {
  keys: CryptoKeyPair;
  csrPem: string;
}

/** escapeRDN escapes a value for an RFC 4514 distinguished name string. */
export function escapeRDN(v: string): string {
  return v.replace(/([,+"\\<>;=])/g, "\\$1").replace(/^([ #])/, "\\$1").replace(/ $/, "\\ ");
}

/**
 * generateKeyAndCSR makes a key pair of the chosen type and a CSR naming the
 * identities as SANs (the CA sets the final subject and SANs from the approved
 * request; the CSR's names are only a request).
 */
export async function generateKeyAndCSR(choice: KeyChoice, identities: string[], crypto: Crypto = globalThis.crypto): Promise<Generated> {
  x509.cryptoProvider.set(crypto);
  const { gen, sign } = algorithms(choice);
  const keys = (await crypto.subtle.generateKey(gen, true, ["sign", "verify"])) as CryptoKeyPair;
  const names: x509.JsonGeneralName[] = identities.map((id) =>
    id.includes("://") ? { type: "url", value: id } : id.includes("@") ? { type: "email", value: id } : { type: "dns", value: id },
  );
  const cn = identities[0] ?? "certdesk client";
  const csr = await x509.Pkcs10CertificateRequestGenerator.create(
    {
      name: `CN=${escapeRDN(cn.slice(0, 64))}`,
      keys,
      signingAlgorithm: sign,
      extensions: names.length ? [new x509.SubjectAlternativeNameExtension(names)] : [],
    },
    crypto,
  );
  return { keys, csrPem: csr.toString("pem") };
}
