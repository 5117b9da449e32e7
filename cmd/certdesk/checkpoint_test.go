package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
)

func TestAuditVerify_SignedCheckpoint_ReportedAndCatchesRewrittenChain(t *testing.T) {
	for _, driver := range []string{"sqlite", "postgres"} {
		t.Run(driver, func(t *testing.T) {
			tp := startPortal(t, driver)
			tp.issue("checkpoint.acme.example")
			if err := tp.P.Checkpointer.CheckpointNow(context.Background()); err != nil {
				t.Fatalf("CheckpointNow: %v", err)
			}
			cps, err := tp.P.Store.Checkpoints(context.Background())
			if err != nil || len(cps) != 1 {
				t.Fatalf("checkpoints = %v, %v; want one", cps, err)
			}
			seq := cps[0].Seq
			v := tp.must(200, "auditor", "GET", "/api/v1/audit/verify", nil)
			if v["ok"] != true || v["checkpoints"] != float64(1) || v["last_checkpoint_seq"] != float64(seq) {
				t.Fatalf("verify = %v; want ok with 1 checkpoint at event %d", v, seq)
			}
			var out bytes.Buffer
			if err := run(context.Background(), []string{"audit", "verify", "--config", tp.CfgPath}, &out, &out); err != nil {
				t.Fatalf("certdesk audit verify: %v\n%s", err, out.String())
			}
			if want := fmt.Sprintf("1 signed checkpoints, last at event %d\n", seq); !strings.Contains(out.String(), want) {
				t.Fatalf("certdesk audit verify printed %q, want a line %q", out.String(), want)
			}

			// An insider rewrites the approval and rebuilds the chain and
			// its head.
			var ev models.AuditEvent
			if err := tp.P.Store.DB().Where("action = ?", "request.approve").First(&ev).Error; err != nil {
				t.Fatal(err)
			}
			modelstest.RewriteAudit(t, tp.P.Store, ev.Seq, `{"comment":"never happened"}`)
			want := fmt.Sprintf("checkpoint %d (event %d) does not match the chain: the log was rewritten", cps[0].ID, seq)
			v = tp.must(200, "auditor", "GET", "/api/v1/audit/verify", nil)
			if v["ok"] != false || v["first_bad_seq"] != float64(seq) || v["problem"] != want {
				t.Fatalf("verify after the rewrite = %v; want first_bad_seq %d and %q", v, seq, want)
			}
			out.Reset()
			err = run(context.Background(), []string{"audit", "verify", "--config", tp.CfgPath}, &out, &out)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("certdesk audit verify after the rewrite: %v", err)
			}
		})
	}
}
