package replicas

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/traefik-authkit/authkit/harness/syncbuf"
	"github.com/traefik-authkit/authkit/harness/traefiktest"
)

// redisServer is a redis-server process the harness started on 127.0.0.1,
// without persistence. Kill and Restart stop it and bring it back on the
// same port, as an outage of the shared Redis does; it is stopped when the
// test ends.
type redisServer struct {
	t        *testing.T
	bin      string
	Port     string
	password string // requirepass; empty for none

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  *syncbuf.Buffer
}

// startRedis starts redis-server on a free loopback port; password, when
// set, becomes its requirepass. A missing redis-server fails the test when
// AUTHKIT_REQUIRE_TRAEFIK is set (CI), and skips it otherwise.
func startRedis(t *testing.T, password string) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		requireOrSkip(t, "redis-server not found on PATH (apt-get install redis-server)")
	}
	port, err := traefiktest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	r := &redisServer{t: t, bin: bin, Port: port, password: password, log: &syncbuf.Buffer{}}
	if err := r.start(); err != nil {
		t.Fatalf("redis-server: %v\n%s", err, r.log.String())
	}
	t.Cleanup(func() {
		r.Kill()
		if t.Failed() && r.log.Len() > 0 {
			t.Logf("redis-server output:\n%s", tail(r.log.String(), 40))
		}
	})
	return r
}

// Addr is host:port.
func (r *redisServer) Addr() string { return "127.0.0.1:" + r.Port }

func (r *redisServer) start() error {
	args := []string{
		"--port", r.Port, "--bind", "127.0.0.1", "--protected-mode", "no",
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning",
	}
	if r.password != "" {
		args = append(args, "--requirepass", r.password)
	}
	cmd := exec.Command(r.bin, args...)
	cmd.Stdout, cmd.Stderr = r.log, r.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	r.mu.Lock()
	r.cmd, r.done = cmd, done
	r.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if redisAnswers(r.Addr()) {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("exited at start")
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not answering PING on %s after 10 s", r.Addr())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Kill stops the server at once (SIGKILL), as a crash does. Clients see
// their connections reset and new ones refused.
func (r *redisServer) Kill() {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
}

// Restart starts the server again on the same port, empty.
func (r *redisServer) Restart() {
	r.t.Helper()
	var err error
	for attempt := 0; attempt < 20; attempt++ { // the port may linger a moment
		if err = r.start(); err == nil {
			return
		}
		r.Kill()
		time.Sleep(250 * time.Millisecond)
	}
	r.t.Errorf("restarting redis-server on %s: %v\n%s", r.Port, err, tail(r.log.String(), 20))
}

// redisAnswers reports whether a Redis server answers PING at addr (a
// NOAUTH error is an answer too).
func redisAnswers(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := io.WriteString(c, "PING\r\n"); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && (strings.HasPrefix(line, "+PONG") || strings.HasPrefix(line, "-NOAUTH"))
}

// tcpProxy forwards TCP connections to a backend and can hold every
// answer from the backend back for a while: a slow Redis, as seen from
// the replicas. Requests go through at once; each chunk of reply leaves
// delay after it arrived, in order, so replies are late by delay, not by
// a growing queue.
type tcpProxy struct {
	ln      net.Listener
	backend string
	delay   atomic.Int64 // time.Duration

	mu    sync.Mutex
	conns map[net.Conn]bool
}

func startTCPProxy(t *testing.T, backend string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, backend: backend, conns: map[net.Conn]bool{}}
	go p.serve()
	t.Cleanup(p.Close)
	return p
}

// Addr is the proxy's host:port, for the replicas' redisUrl.
func (p *tcpProxy) Addr() string { return p.ln.Addr().String() }

// SetDelay holds every reply back by d from now on (0: none).
func (p *tcpProxy) SetDelay(d time.Duration) { p.delay.Store(int64(d)) }

func (p *tcpProxy) Close() {
	_ = p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.Close()
	}
}

func (p *tcpProxy) track(c net.Conn, on bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on {
		p.conns[c] = true
	} else {
		delete(p.conns, c)
	}
	return true
}

func (p *tcpProxy) serve() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.handle(client)
	}
}

func (p *tcpProxy) handle(client net.Conn) {
	server, err := net.DialTimeout("tcp", p.backend, 2*time.Second)
	if err != nil {
		_ = client.Close()
		return
	}
	p.track(client, true)
	p.track(server, true)
	defer func() {
		_ = client.Close()
		_ = server.Close()
		p.track(client, false)
		p.track(server, false)
	}()
	go func() {
		_, _ = io.Copy(server, client)
		_ = server.Close()
	}()
	type chunk struct {
		data []byte
		due  time.Time
	}
	replies := make(chan chunk, 256)
	go func() {
		defer close(replies)
		buf := make([]byte, 32<<10)
		for {
			n, err := server.Read(buf)
			if n > 0 {
				replies <- chunk{data: append([]byte(nil), buf[:n]...), due: time.Now().Add(time.Duration(p.delay.Load()))}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range replies {
		time.Sleep(time.Until(c.due))
		if _, err := client.Write(c.data); err != nil {
			_ = server.Close()
			for range replies {
			}
			return
		}
	}
}

func tail(s string, lines int) string {
	parts := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}
