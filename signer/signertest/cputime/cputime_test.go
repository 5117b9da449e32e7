//go:build linux

package cputime

import (
	"crypto/sha256"
	"os"
	"os/exec"
	"testing"
	"time"
)

// /proc and getrusage agree on this process: same parent, and CPU time that
// grows with work (to within /proc's 10 ms ticks, per thread).
func TestOf_ThisProcess_AgreesWithGetrusage(t *testing.T) {
	before, ok := Of(os.Getpid())
	if !ok {
		t.Fatal("this process's /proc/<pid>/stat could not be read")
	}
	start := Self()
	b := make([]byte, 1<<20)
	for Self()-start < 200*time.Millisecond {
		sha256.Sum256(b)
	}
	p, ok := Of(os.Getpid())
	if !ok {
		t.Fatal("this process's /proc/<pid>/stat could not be read")
	}
	if p.PPID != os.Getppid() {
		t.Errorf("parent %d, want %d", p.PPID, os.Getppid())
	}
	if grew := p.Self - before.Self; grew < 100*time.Millisecond {
		t.Errorf("/proc says the work took %v of CPU time, getrusage at least 200ms", grew)
	}
	if self := Self(); p.Self > self+50*time.Millisecond {
		t.Errorf("/proc says %v of CPU time, more than getrusage's %v", p.Self, self)
	}
	if _, ok := Of(-1); ok {
		t.Error("a process that does not exist was read")
	}
}

// Tree counts a running child of the root (a busy shell, killed at the end).
func TestTree_CountsRunningChildren(t *testing.T) {
	cmd := exec.Command("sh", "-c", "while :; do :; done") // stopped by pid below
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		child, ok := Of(cmd.Process.Pid)
		if !ok {
			t.Fatal("the child's CPU time could not be read")
		}
		if child.Self >= 50*time.Millisecond {
			own, _ := Of(os.Getpid())
			tree, ok := Tree(os.Getpid())
			if !ok || tree < own.Self+own.Children+child.Self {
				t.Fatalf("tree %v, want at least this process's %v and the child's %v", tree, own.Self+own.Children, child.Self)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the child used no CPU time")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
