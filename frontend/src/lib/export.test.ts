import "reflect-metadata";
import { beforeAll, describe, expect, it } from "vitest";
import * as x509 from "@peculiar/x509";
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildPKCS12, decryptPrivateKey, encryptPrivateKey, openPKCS12 } from "./export";
import { generateKeyAndCSR, KEY_CHOICES, type KeyChoice } from "./keygen";
import { parseCSR } from "./csr";

const crypto = globalThis.crypto;
const PASS = "correct horse battery";

// issue makes a CA and a leaf for the given key pair, as the server would.
async function issue(keys: CryptoKeyPair): Promise<{ leaf: x509.X509Certificate; ca: x509.X509Certificate }> {
  const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
  const caKeys = (await crypto.subtle.generateKey(alg, true, ["sign", "verify"])) as CryptoKeyPair;
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "01",
    name: "CN=test issuing CA",
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
    keys: caKeys,
    signingAlgorithm: alg,
    extensions: [new x509.BasicConstraintsExtension(true, 0, true)],
  });
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: "0a1b2c3d4e5f6071",
    subject: "CN=billing",
    issuer: ca.subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
    publicKey: keys.publicKey,
    signingKey: caKeys.privateKey,
    signingAlgorithm: alg,
  });
  return { leaf, ca };
}

function openssl(args: string[], dir: string): string {
  return execFileSync("openssl", args, { cwd: dir, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

describe("key export", () => {
  let dir: string;
  beforeAll(() => {
    x509.cryptoProvider.set(crypto);
    dir = mkdtempSync(join(tmpdir(), "certdesk-export-"));
    return () => rmSync(dir, { recursive: true, force: true });
  });

  it.each(KEY_CHOICES.map((c) => [c]))("generates a %s key whose CSR the local policy accepts", async (choice) => {
    const g = await generateKeyAndCSR(choice as KeyChoice, ["spiffe://example.org/partners/acme/billing", "billing.acme.example"]);
    const r = await parseCSR(g.csrPem);
    if (!r.ok) throw new Error(r.problem.reason);
    expect(r.info.problems).toEqual([]);
    expect(r.info.keyType).toBe(choice);
    expect(r.info.sans).toEqual(["spiffe://example.org/partners/acme/billing", "billing.acme.example"]);
  });

  it.each(KEY_CHOICES.map((c) => [c]))("round-trips a %s key through encrypted PKCS#8, and OpenSSL opens it", async (choice) => {
    const g = await generateKeyAndCSR(choice as KeyChoice, ["billing.acme.example"]);
    const pem = await encryptPrivateKey(g.keys.privateKey, PASS);
    expect(pem).toMatch(/^-----BEGIN ENCRYPTED PRIVATE KEY-----\n/);
    const plain = await decryptPrivateKey(pem, PASS);
    expect(new Uint8Array(plain)).toEqual(new Uint8Array(await crypto.subtle.exportKey("pkcs8", g.keys.privateKey)));
    await expect(decryptPrivateKey(pem, "wrong passphrase")).rejects.toThrow();

    writeFileSync(join(dir, "key.pem"), pem);
    const spki = openssl(["pkey", "-in", "key.pem", "-passin", `pass:${PASS}`, "-pubout"], dir);
    const want = x509.PemConverter.encode(await crypto.subtle.exportKey("spki", g.keys.publicKey), "PUBLIC KEY");
    expect(spki.replace(/\r/g, "").trim()).toBe(want.replace(/\r/g, "").trim());
  });

  it("builds a PKCS#12 with key, certificate and chain that pkijs and OpenSSL both open", async () => {
    const g = await generateKeyAndCSR("ECDSA P-256", ["billing.acme.example"]);
    const { leaf, ca } = await issue(g.keys);
    const chain = leaf.toString("pem") + "\n" + ca.toString("pem") + "\n";
    const p12 = await buildPKCS12(g.keys.privateKey, chain, PASS);

    const opened = await openPKCS12(p12, PASS);
    expect(new Uint8Array(opened.keyPkcs8!)).toEqual(new Uint8Array(await crypto.subtle.exportKey("pkcs8", g.keys.privateKey)));
    expect(opened.certificates.map((c) => new x509.X509Certificate(c).subject)).toEqual(["CN=billing", "CN=test issuing CA"]);
    await expect(openPKCS12(p12, "wrong passphrase")).rejects.toThrow();

    writeFileSync(join(dir, "bundle.p12"), p12);
    const out = openssl(["pkcs12", "-in", "bundle.p12", "-passin", `pass:${PASS}`, "-noenc"], dir);
    expect(out).toContain("BEGIN PRIVATE KEY");
    expect(out.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    expect(out).toMatch(/subject=CN\s?=\s?billing/);
  });
});
