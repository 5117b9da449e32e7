//go:build benchcrl

// The CRL scale comparison behind docs/performance.md. It is not part of
// make test; run it through .ci/bench-crl.sh.
package revocation_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certdesk/certdesk/handlers/revocation"
	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
	"github.com/certdesk/certdesk/signer"
)

// peakRSS resets the process's peak resident set (/proc/self/clear_refs)
// and returns a function that reads it (VmHWM) in MiB.
func peakRSS(t *testing.T) func() float64 {
	t.Helper()
	runtime.GC()
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0o200); err != nil {
		t.Fatalf("resetting the peak RSS: %v", err)
	}
	return func() float64 {
		b, err := os.ReadFile("/proc/self/status")
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
				kb, _ := strconv.ParseFloat(f[1], 64)
				return kb / 1024
			}
		}
		t.Fatal("no VmHWM in /proc/self/status")
		return 0
	}
}

// envInt is the integer in the environment variable name, or def.
func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// hotPartition is the partition the benchmark fills to the size a
// partition has with BENCH_CRL_AT_SCALE revoked certificates.
const hotPartition = 7

func TestCRLScale_FullPartitionAndRevokeToPublish_AgainstCfssl(t *testing.T) {
	n := envInt("BENCH_CRL_ENTRIES", 1_000_000)
	atScale := envInt("BENCH_CRL_AT_SCALE", 10_000_000)
	rounds := envInt("BENCH_ROUNDS", 3)
	hot := atScale / signer.DefaultCRLPartitions
	store := modelstest.Postgres(t)
	env := newRevocation(t, store, hsmCA(t, "crlscale"), nil)
	seed := env.issue("seed")
	kid, _ := signer.KeyID(env.ca.CA.Issuer.Certificate().PublicKey)

	// n revoked certificates, hot of them in one partition (its size when
	// atScale are revoked), the others spread over the other partitions.
	start := time.Now()
	err := store.DB().Exec(`INSERT INTO requests (id, state, org, csrpem, validity_days, requested_by, created_at, updated_at)
	    SELECT 'bench-' || i, 'issued', ?, '', 30, 'bench', now(), now() FROM generate_series(1, ?) AS i`, seed.cert.Org, n).Error
	if err != nil {
		t.Fatal(err)
	}
	err = store.DB().Exec(`INSERT INTO certificates (id, serial, request_id, org, not_before, not_after, state, revoked_at,
	        revocation_reason, created_at, updated_at, issuer_key_id, crl_partition)
	    SELECT 'bench-' || i, '5' || substr(upper(md5(i::text)), 2), 'bench-' || i, ?, now() - interval '1 day', now() + interval '30 days', 'revoked',
	        now() - make_interval(secs => i % 86400), (ARRAY[0,1,4,5])[i % 4 + 1], now(), now(), ?,
	        CASE WHEN i <= ? THEN ? ELSE (8 + i % 63) % 64 END
	    FROM generate_series(1, ?) AS i`, seed.cert.Org, kid, hot, hotPartition, n).Error
	if err != nil {
		t.Fatal(err)
	}
	if err := store.DB().Exec("ANALYZE certificates").Error; err != nil {
		t.Fatal(err)
	}
	t.Logf("inserted %d revoked certificates in %v", n, time.Since(start))

	// cfssl's input: as many serials, decimal, one a line, and a software
	// P-256 CA (cfssl reads its key from a file).
	var serials bytes.Buffer
	buf := make([]byte, 16)
	for i := 0; i < n; i++ {
		_, _ = rand.Read(buf)
		buf[0] = 0x50 | buf[0]&0x0f
		serials.WriteString(new(big.Int).SetBytes(buf).String())
		serials.WriteByte('\n')
	}
	serialsPath := env.write("serials.txt", serials.Bytes())
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ski, _ := signer.SubjectKeyID(key.Public())
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cfssl bench CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(48 * time.Hour), IsCA: true, BasicConstraintsValid: true, SubjectKeyId: ski, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	kder, _ := x509.MarshalECPrivateKey(key)
	caPath := env.write("cfssl-ca.pem", signer.PEM(caDER))
	keyPath := env.write("cfssl-ca.key", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))

	var cdSec, cdRSS, cfSec, cfRSS, secRatio, rssRatio []float64
	var size int
	for round := 0; round < rounds; round++ {
		peak := peakRSS(t)
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		t0 := time.Now()
		row, err := env.h.GenerateCRL(bg, revocation.CRLIssuing)
		if err != nil {
			t.Fatal(err)
		}
		sec := time.Since(t0).Seconds()
		runtime.ReadMemStats(&ms1)
		rss := peak()
		if row.Entries < n {
			t.Fatalf("the full CRL lists %d entries, want at least %d", row.Entries, n)
		}
		size = len(row.DER)
		t.Logf("certdesk full CRL #%d: %d entries, %.1f MiB, %.2f s, peak RSS %.0f MiB, %.0f MiB allocated", row.Number, row.Entries,
			float64(size)/(1<<20), sec, rss, float64(ms1.TotalAlloc-ms0.TotalAlloc)/(1<<20))

		cmd := exec.Command("/usr/bin/time", "-f", "%e %M", "cfssl", "gencrl", serialsPath, caPath, keyPath, "86400")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("cfssl gencrl: %v\n%s", err, stderr.String())
		}
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		f := strings.Fields(lines[len(lines)-1])
		cfs, _ := strconv.ParseFloat(f[0], 64)
		cfk, _ := strconv.ParseFloat(f[1], 64)
		t.Logf("cfssl gencrl: %.2f s, peak RSS %.0f MiB, %d bytes of base64", cfs, cfk/1024, stdout.Len())
		cdSec, cdRSS, cfSec, cfRSS = append(cdSec, sec), append(cdRSS, rss), append(cfSec, cfs), append(cfRSS, cfk/1024)
		secRatio, rssRatio = append(secRatio, sec/cfs), append(rssRatio, rss*1024/cfk)
	}

	// The partition a revocation re-signs, at the size it has with atScale
	// revoked; then a revocation in it, end to end.
	var partSec []float64
	for round := 0; round < rounds; round++ {
		t0 := time.Now()
		row, err := env.h.GenerateCRL(bg, revocation.PartitionName(hotPartition))
		if err != nil {
			t.Fatal(err)
		}
		partSec = append(partSec, time.Since(t0).Seconds())
		if row.Entries < hot {
			t.Fatalf("the partition lists %d entries, want %d", row.Entries, hot)
		}
	}
	var publishMS []float64
	for round := 0; round < rounds; round++ {
		c := env.issue(fmt.Sprintf("victim%d", round))
		if err := store.DB().Model(&models.Certificate{}).Where("id = ?", c.cert.ID).Update("crl_partition", hotPartition).Error; err != nil {
			t.Fatal(err)
		}
		before := env.crlNumber(revocation.CRLIssuing)
		rc := env.revoke(c, models.ReasonKeyCompromise)
		if rc.CRLPartition != hotPartition {
			t.Fatalf("revoked certificate in partition %d", rc.CRLPartition)
		}
		prev := env.h.Status().LastRevokeToPublishMS
		env.waitFor("the revocation published", 30*time.Second, func() bool {
			st := env.h.Status().LastRevokeToPublishMS
			return st != nil && (prev == nil || *st != *prev || round == 0)
		})
		publishMS = append(publishMS, float64(*env.h.Status().LastRevokeToPublishMS))
		// Let the full CRL of this revocation finish before the next round.
		env.waitFor("the full CRL after the revocation", 60*time.Second, func() bool { return env.crlNumber(revocation.CRLIssuing) > before })
	}
	work := fmt.Sprintf("Full CRL, %d entries (certdesk: read from PostgreSQL, SoftHSM key; cfssl gencrl: serials file, software key), ×%d rounds", n, rounds)
	benchRow(t,
		fmt.Sprintf("| %s: seconds (lower is better) | %.2f | %.2f | %s× |", work, median(cdSec), median(cfSec), spread(secRatio, "%.2f")),
		fmt.Sprintf("| %s: peak RSS MiB (lower is better) | %.0f | %.0f | %s× |", work, median(cdRSS), median(cfRSS), spread(rssRatio, "%.2f")),
		fmt.Sprintf("| Partition CRL of %d entries (one of %d partitions with %d revoked): seconds, median (min–max) of %d | %s | – | – |",
			hot, signer.DefaultCRLPartitions, atScale, rounds, spread(partSec, "%.2f")),
		fmt.Sprintf("| Revoke → partition and delta published, partition of %d entries (%d revoked in all, the partition as with %d): ms, median (min–max) of %d | %s | – | – |",
			hot, n+rounds, atScale, rounds, spread(publishMS, "%.0f")),
	)
	t.Logf("full CRL size %.1f MiB", float64(size)/(1<<20))
}
