package revocation_test

import (
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"

	"github.com/certdesk/certdesk/handlers/revocation"
)

func TestServeGC_MemoryLimitFitsTheCgroup(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cgroup int64
		want   int64
	}{
		{"no cgroup limit", 0, revocation.ServeMemoryLimit},
		{"a large cgroup", 8 << 30, revocation.ServeMemoryLimit},
		{"a 512 MiB container", 512 << 20, 384 << 20},
		{"a 128 MiB container", 128 << 20, 96 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := revocation.ServeGC(tc.cgroup)
			if got.Percent != revocation.ServeGCPercent || got.MemoryLimit != tc.want {
				t.Errorf("ServeGC(%d) = %+v, want percent %d and limit %d", tc.cgroup, got, revocation.ServeGCPercent, tc.want)
			}
		})
	}
}

func TestApplyServeGC_OperatorEnvironmentWins(t *testing.T) {
	for _, tc := range []struct {
		name      string
		env       map[string]string
		wantApply bool
	}{
		{"neither set", map[string]string{}, true},
		{"GOGC set", map[string]string{"GOGC": "150"}, false},
		{"GOMEMLIMIT set", map[string]string{"GOMEMLIMIT": "1GiB"}, false},
		{"GOGC off", map[string]string{"GOGC": "off"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			beforePercent := debug.SetGCPercent(100)
			defer debug.SetGCPercent(beforePercent)
			beforeLimit := debug.SetMemoryLimit(math.MaxInt64)
			defer debug.SetMemoryLimit(beforeLimit)

			s, applied, undo := revocation.ApplyServeGC(func(k string) string { return tc.env[k] })
			if applied != tc.wantApply {
				t.Fatalf("applied = %v, want %v", applied, tc.wantApply)
			}
			wantPercent, wantLimit := 100, int64(math.MaxInt64)
			if applied {
				wantPercent, wantLimit = revocation.ServeGCPercent, s.MemoryLimit
				if s.MemoryLimit <= 0 || s.MemoryLimit > revocation.ServeMemoryLimit {
					t.Errorf("memory limit %d, want in (0, %d]", s.MemoryLimit, revocation.ServeMemoryLimit)
				}
			}
			if p, l := debug.SetGCPercent(-1), debug.SetMemoryLimit(-1); p != wantPercent || l != wantLimit {
				t.Errorf("runtime has percent %d and limit %d, want %d and %d", p, l, wantPercent, wantLimit)
			}
			debug.SetGCPercent(wantPercent)
			undo()
			if p, l := debug.SetGCPercent(-1), debug.SetMemoryLimit(-1); p != 100 || l != math.MaxInt64 {
				t.Errorf("after undo: percent %d and limit %d, want 100 and no limit", p, l)
			}
			debug.SetGCPercent(100)
		})
	}
}

func TestCgroupMemoryLimit_ReadsV2AndV1(t *testing.T) {
	for _, tc := range []struct {
		name  string
		proc  string
		files map[string]string
		want  int64
	}{
		{"v2 service cgroup", "0::/system.slice/certdesk.service\n",
			map[string]string{"system.slice/certdesk.service/memory.max": "536870912\n"}, 512 << 20},
		{"v2 container root", "0::/\n", map[string]string{"memory.max": "268435456\n"}, 256 << 20},
		{"v2 no limit", "0::/\n", map[string]string{"memory.max": "max\n"}, 0},
		{"v1 container", "4:memory:/kubepods/pod1\n1:cpu:/\n",
			map[string]string{"memory/memory.limit_in_bytes": "134217728\n"}, 128 << 20},
		{"v1 no limit", "4:cpuacct,memory:/x\n", map[string]string{"memory/x/memory.limit_in_bytes": "9223372036854771712\n"}, 0},
		{"no memory controller", "1:cpu:/\n", map[string]string{}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			root := filepath.Join(dir, "cgroup")
			for name, text := range tc.files {
				p := filepath.Join(root, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			proc := filepath.Join(dir, "self-cgroup")
			if err := os.WriteFile(proc, []byte(tc.proc), 0o644); err != nil {
				t.Fatal(err)
			}
			if got := revocation.CgroupMemoryLimit(proc, root); got != tc.want {
				t.Errorf("CgroupMemoryLimit = %d, want %d", got, tc.want)
			}
		})
	}
	if got := revocation.CgroupMemoryLimit(filepath.Join(t.TempDir(), "missing"), "/nonexistent"); got != 0 {
		t.Errorf("without /proc/self/cgroup: %d, want 0", got)
	}
}
