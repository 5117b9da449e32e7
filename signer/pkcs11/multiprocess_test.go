package pkcs11

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// TestOpen_ManyProcessesAtOnce_AllLogIn starts several processes that open
// the same SoftHSM2 token at the same moment, as portal replicas sharing a
// token do when they start together. SoftHSM2 rewrites the token's object
// file at every login, so a process reading it meanwhile gets
// CKR_GENERAL_ERROR; Open must ride that out, not fail the start.
func TestOpen_ManyProcessesAtOnce_AllLogIn(t *testing.T) {
	const rounds, procs = 4, 6
	retried := 0
	defer func() { t.Logf("%d of %d processes opened the token only after retrying", retried, rounds*procs) }()
	for r := 0; r < rounds; r++ {
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			failures []string
		)
		start := make(chan struct{})
		for i := 0; i < procs; i++ {
			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), childEnv+"=open", "CHILD_URI="+hsm.URI(""))
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				out, err := cmd.CombinedOutput()
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					failures = append(failures, fmt.Sprintf("%v: %s", err, strings.TrimSpace(string(out))))
				}
				if strings.Contains(string(out), "token opened after retrying") {
					retried++
				}
			}()
		}
		close(start)
		wg.Wait()
		if len(failures) > 0 {
			t.Fatalf("round %d: %d of %d processes failed to open the token:\n%s", r+1, len(failures), procs, strings.Join(failures, "\n"))
		}
	}
}
