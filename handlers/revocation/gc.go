package revocation

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
)

// ServeGCPercent is the garbage collector's target percentage (GOGC) of a
// serving process: the heap may grow to 21 times what is live before a
// collection. An OCSP answer allocates about 2.6 KB, nearly all of it in
// net/http, so at 60,000 answers a second with the default 100 and a few
// MB live the collector ran about 30 times a second, each cycle stopping
// the world twice; on busy cores a stop waits for every thread, and those
// stops set the answers' tail latency. At this percentage it runs one to
// two times a second, too seldom to reach the 99th percentile.
const ServeGCPercent = 2000

// ServeMemoryLimit caps the soft memory limit (GOMEMLIMIT) of a serving
// process: the collector runs before the Go heap passes it whatever
// ServeGCPercent allows, so a large live heap (a full CRL of a million
// entries) is collected as often as it needs.
const ServeMemoryLimit = 512 << 20

// GCSetting is a garbage collector percentage and soft memory limit.
type GCSetting struct {
	Percent     int
	MemoryLimit int64 // bytes
}

// ServeGC is the setting for a process whose cgroup limits its memory to
// cgroupLimit bytes (0 for no limit): ServeGCPercent, and the smaller of
// ServeMemoryLimit and three quarters of the cgroup's limit, so that what
// is not Go's heap (the PKCS#11 module, stacks, the kernel's buffers) fits
// beside it.
func ServeGC(cgroupLimit int64) GCSetting {
	limit := int64(ServeMemoryLimit)
	if cgroupLimit > 0 && cgroupLimit/4*3 < limit {
		limit = cgroupLimit / 4 * 3
	}
	return GCSetting{Percent: ServeGCPercent, MemoryLimit: limit}
}

// ApplyServeGC applies ServeGC for this process's cgroup unless the
// operator chose for themselves: when GOGC or GOMEMLIMIT is set in the
// environment (getenv), the runtime already follows them and nothing
// changes. It reports the setting it applied, whether it applied one, and
// a function that puts back the previous setting.
func ApplyServeGC(getenv func(string) string) (GCSetting, bool, func()) {
	if getenv("GOGC") != "" || getenv("GOMEMLIMIT") != "" {
		return GCSetting{}, false, func() {}
	}
	s := ServeGC(CgroupMemoryLimit("/proc/self/cgroup", "/sys/fs/cgroup"))
	prevPercent := debug.SetGCPercent(s.Percent)
	prevLimit := debug.SetMemoryLimit(s.MemoryLimit)
	return s, true, func() {
		debug.SetGCPercent(prevPercent)
		debug.SetMemoryLimit(prevLimit)
	}
}

// CgroupMemoryLimit is the memory limit, in bytes, of the cgroup that
// procCgroup (/proc/self/cgroup) names, read under root (/sys/fs/cgroup):
// memory.max (cgroup v2) or memory/memory.limit_in_bytes (v1), in the
// process's cgroup or, as inside a container, at the root; 0 when there is
// none or it cannot be read.
func CgroupMemoryLimit(procCgroup, root string) int64 {
	b, err := os.ReadFile(procCgroup)
	if err != nil {
		return 0
	}
	var paths []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		// hierarchy-ID:controllers:path
		f := strings.SplitN(sc.Text(), ":", 3)
		if len(f) != 3 {
			continue
		}
		switch {
		case f[0] == "0" && f[1] == "":
			paths = append(paths, filepath.Join(root, f[2], "memory.max"), filepath.Join(root, "memory.max"))
		case strings.Contains(","+f[1]+",", ",memory,"):
			paths = append(paths, filepath.Join(root, "memory", f[2], "memory.limit_in_bytes"), filepath.Join(root, "memory", "memory.limit_in_bytes"))
		}
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// "max" (v2) or a page-rounded MaxInt64 (v1) mean no limit.
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || n <= 0 || n >= 1<<62 {
			return 0
		}
		return n
	}
	return 0
}
