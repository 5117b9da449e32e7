package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runDocs are the guides whose ```sh blocks must run as written against
// `make demo`, in the order the docs test runs them.
var runDocs = []string{"docs/partner.md", "docs/gateway.md"}

// Addresses the guides use for the demo: the portal of `make demo` and the
// trial gateway of docs/gateway.md. The docs test replaces them with free
// ports; nothing else in a block is changed.
const (
	docsPortalAddr  = "127.0.0.1:8080"
	docsGatewayAddr = "127.0.0.1:8443"
)

// notRun marks a block that cannot run against the demo: an HTML comment
// `<!-- not run: why -->` as the last non-blank line before the block's
// fence.
var notRun = regexp.MustCompile(`^<!--\s*not run:\s*(.*?)\s*-->$`)

// docBlock is one ```sh block of a guide.
type docBlock struct {
	file   string
	line   int    // of the opening fence
	text   string // the commands
	notRun string // why it cannot run here; "" when it runs
}

// shellBlocks returns the ```sh blocks of the markdown file, and an error
// for a `not run` mark without a reason or without a block after it.
func shellBlocks(file string) ([]docBlock, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var (
		out     []docBlock
		prev    string
		cur     *docBlock
		inFence bool
		body    strings.Builder
	)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case inFence && trimmed == "```":
			inFence = false
			if cur != nil {
				cur.text = body.String()
				out = append(out, *cur)
				cur = nil
			}
		case inFence:
			if cur != nil {
				body.WriteString(line + "\n")
			}
		case strings.HasPrefix(trimmed, "```"):
			inFence = true
			m := notRun.FindStringSubmatch(prev)
			if trimmed == "```sh" {
				cur = &docBlock{file: file, line: n}
				body.Reset()
				if m != nil {
					if m[1] == "" {
						return nil, fmt.Errorf("%s:%d: a `not run` mark must say why", file, n-1)
					}
					cur.notRun = m[1]
				}
			} else if m != nil {
				return nil, fmt.Errorf("%s:%d: a `not run` mark stands before a %s block, not a ```sh one", file, n-1, trimmed)
			}
		case notRun.MatchString(prev) && trimmed != "":
			return nil, fmt.Errorf("%s:%d: a `not run` mark must stand right before a ```sh block", file, n-1)
		}
		if trimmed != "" {
			prev = trimmed
		}
	}
	if inFence {
		return nil, fmt.Errorf("%s: unclosed code block", file)
	}
	return out, sc.Err()
}

// TestShellBlocks_MarksAndFences checks how the docs test reads a guide:
// which blocks run, which are marked and why, and which marks are refused.
func TestShellBlocks_MarksAndFences(t *testing.T) {
	for _, tc := range []struct {
		name, md string
		want     []docBlock // file and line are not compared
		wantErr  string
	}{
		{"sh blocks run, others are ignored", "a\n```sh\necho 1\n```\n```go\nx := 1\n```\n```sh\necho 2\n```\n",
			[]docBlock{{text: "echo 1\n"}, {text: "echo 2\n"}}, ""},
		{"a marked block says why", "<!-- not run: needs a Kubernetes cluster -->\n```sh\nkubectl apply\n```\n",
			[]docBlock{{text: "kubectl apply\n", notRun: "needs a Kubernetes cluster"}}, ""},
		{"a mark without a reason", "<!-- not run: -->\n```sh\nx\n```\n", nil, "must say why"},
		{"a mark away from its block", "<!-- not run: far -->\ntext\n```sh\nx\n```\n", nil, "right before"},
		{"a mark before another language", "<!-- not run: java -->\n```java\nx\n```\n", nil, "not a ```sh one"},
		{"an unclosed block", "```sh\nx\n", nil, "unclosed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "doc.md")
			if err := os.WriteFile(p, []byte(tc.md), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := shellBlocks(p)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d blocks, want %d: %+v", len(got), len(tc.want), got)
			}
			for i := range got {
				if got[i].text != tc.want[i].text || got[i].notRun != tc.want[i].notRun {
					t.Errorf("block %d = %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

// TestDocs_ShellBlocksRunAgainstTheDemo runs every ```sh block of the
// partner and gateway guides with bash, in order, one shell session a
// guide, in a folder laid out like a checkout after `make demo`
// (bin/certdesk, deploy/, demo-data/ of a running `certdesk demo`). The
// gateway guide's trial nginx is started by its blocks with a pid file in
// that folder and stopped by that pid. A block that is neither run nor
// marked `not run` with a reason fails the test.
func TestDocs_ShellBlocksRunAgainstTheDemo(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "jq", "openssl", "nginx", "keytool"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed to run the guides' examples: %v", tool, err)
		}
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(certdeskBinary(t), filepath.Join(dir, "bin", "certdesk")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(repo, "deploy"), filepath.Join(dir, "deploy")); err != nil {
		t.Fatal(err)
	}
	addr, idpAddr, gwAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	d := startProcess(t, nil, "demo", "--data", filepath.Join(dir, "demo-data"), "--addr", addr, "--idp-addr", idpAddr)
	waitReady(t, "http://"+addr+"/readyz", d)
	t.Cleanup(func() { stopDocsNginx(t, filepath.Join(dir, "gateway-demo", "logs", "nginx.pid")) })

	for _, doc := range runDocs {
		t.Run(filepath.Base(doc), func(t *testing.T) {
			blocks, err := shellBlocks(filepath.Join(repo, doc))
			if err != nil {
				t.Fatal(err)
			}
			var script strings.Builder
			script.WriteString("set -eo pipefail\n")
			ran := 0
			for i, b := range blocks {
				if b.notRun != "" {
					t.Logf("%s:%d not run: %s", doc, b.line, b.notRun)
					continue
				}
				ran++
				name := filepath.Join(dir, fmt.Sprintf("%s-block-%d.sh", strings.TrimSuffix(filepath.Base(doc), ".md"), i))
				text := strings.NewReplacer(docsPortalAddr, addr, docsGatewayAddr, gwAddr).Replace(b.text)
				if err := os.WriteFile(name, []byte(text), 0o600); err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(&script, "echo %s >&2\n. %s\n", strconv.Quote(fmt.Sprintf("==> %s:%d", doc, b.line)), name)
			}
			if ran == 0 {
				t.Fatalf("%s has no ```sh block that runs", doc)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "bash", "-c", script.String())
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "HOME="+dir)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("the %s examples failed (the last ==> names the block): %v\n%s\ndemo log:\n%s", doc, err, out, tail(d.output(), 3000))
			}
			t.Logf("%s:\n%s", doc, out)
		})
	}
}

// stopDocsNginx stops the trial nginx of docs/gateway.md, if it runs, by
// the pid in its pid file.
func stopDocsNginx(t *testing.T, pidFile string) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		t.Errorf("nginx pid file %s: %q", pidFile, b)
		return
	}
	_ = syscall.Kill(pid, syscall.SIGQUIT)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if syscall.Kill(pid, 0) != nil {
			return
		}
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// tail is the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
