package cputime

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is the kernel's USER_HZ, the unit of /proc/<pid>/stat's times.
const clockTick = 100

// Proc is what /proc/<pid>/stat (Linux) says of a process's CPU time.
type Proc struct {
	Self     time.Duration // user + system, all its threads
	Children time.Duration // of its children that exited and were waited for
	PPID     int           // its parent
}

// Of reads the CPU time of process pid; false when it cannot be read (no
// such process, or no /proc).
func Of(pid int) (Proc, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Proc{}, false
	}
	// The command name is in parentheses and may hold spaces: count from
	// the closing one.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return Proc{}, false
	}
	// After the name: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14).
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return Proc{}, false
	}
	ticks := func(k int) time.Duration {
		v, _ := strconv.ParseInt(f[k], 10, 64)
		return time.Duration(v) * time.Second / clockTick
	}
	ppid, _ := strconv.Atoi(f[1])
	return Proc{Self: ticks(11) + ticks(12), Children: ticks(13) + ticks(14), PPID: ppid}, true
}

// Tree is the CPU time of process root and its children, those running and
// those that exited (a server: PostgreSQL's postmaster, its backends and
// helpers); false when root cannot be read.
func Tree(root int) (time.Duration, bool) {
	p, ok := Of(root)
	if !ok {
		return 0, false
	}
	total := p.Self + p.Children
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, false
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == root {
			continue
		}
		if c, ok := Of(pid); ok && c.PPID == root {
			total += c.Self
		}
	}
	return total, true
}
