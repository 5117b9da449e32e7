// Package nginxtest runs a real nginx for a test, as a gateway in front of
// certdesk or as the relying party of its CRLs: in a directory of the
// test's, on a free loopback port, in the foreground, stopped by its pid
// when the test ends. It never touches another nginx on the machine.
package nginxtest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Server is an nginx this test started.
type Server struct {
	Dir  string // its prefix: nginx.conf, logs/, tmp/
	Conf string // path of nginx.conf
	Addr string // host:port it listens on
}

// Start writes dir/nginx.conf with one http server, whose block (the text
// inside `server { … }`, listen directive included) serverBlock returns for
// the address picked, checks it with nginx -t, starts nginx and waits until
// it accepts connections.
func Start(t testing.TB, dir string, serverBlock func(addr string) string) *Server {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		t.Fatal("nginx is not installed (Debian nginx-light); make test installs it")
	}
	for _, d := range []string{"logs", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Dir: dir, Conf: filepath.Join(dir, "nginx.conf"), Addr: l.Addr().String()}
	l.Close()
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;"
	}
	conf := fmt.Sprintf(`%s
worker_processes 1;
pid %[2]s/nginx.pid;
error_log %[2]s/logs/error.log info;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path %[2]s/tmp/body;
    proxy_temp_path %[2]s/tmp/proxy;
    fastcgi_temp_path %[2]s/tmp/fastcgi;
    uwsgi_temp_path %[2]s/tmp/uwsgi;
    scgi_temp_path %[2]s/tmp/scgi;
    server {
%[3]s
    }
}
`, user, dir, serverBlock(s.Addr))
	if err := os.WriteFile(s.Conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-t", "-p", dir, "-c", s.Conf).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", s.Conf, "-g", "daemon off;")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting nginx: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt) // SIGINT: fast shutdown of this nginx only
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", s.Addr)
		if err == nil {
			c.Close()
			return s
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "logs", "error.log"))
			t.Fatalf("nginx did not listen on %s: %v\n%s\n%s", s.Addr, err, stderr.String(), log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Reload has this nginx read its configuration and files again.
func (s *Server) Reload(t testing.TB) {
	t.Helper()
	if out, err := exec.Command("nginx", "-p", s.Dir, "-c", s.Conf, "-s", "reload").CombinedOutput(); err != nil {
		t.Fatalf("nginx -s reload: %v\n%s", err, out)
	}
}
