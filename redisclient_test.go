package authkit

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Tests against real servers read the URLs scripts/redis.sh prints (with
// os.Getenv: the interpreter keeps its own environment) and skip when they
// are unset, unless AUTHKIT_REQUIRE_REDIS is set. Slow, silent, dead and
// misbehaving servers are in-process listeners, so those tests always run,
// compiled and under yaegi (which has no os/exec to start redis-server).

func redisTestEnv(t *testing.T, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		if os.Getenv("AUTHKIT_REQUIRE_REDIS") != "" {
			t.Fatalf("%s is not set, and AUTHKIT_REQUIRE_REDIS is: eval \"$(scripts/redis.sh start DIR)\" first", name)
		}
		t.Skipf("%s is not set (eval \"$(scripts/redis.sh start DIR)\")", name)
	}
	return v
}

func redisEnvFunc(env map[string]string) func(string) string {
	return func(name string) string { return env[name] }
}

// redisTestClient parses rawURL with env as the environment. Real servers
// get generous timeouts (2 loaded cores, the race detector, the
// interpreter); the timeout tests use in-process servers and set their own.
func redisTestClient(t *testing.T, rawURL string, env map[string]string) *redisClient {
	t.Helper()
	opts, err := parseRedisURL(rawURL, redisEnvFunc(env))
	if err != nil {
		t.Fatal(err)
	}
	opts.dialTimeout = 3 * time.Second
	opts.commandTimeout = 2 * time.Second
	c := newRedisClient(opts)
	t.Cleanup(func() { redisTestDrain(c) })
	return c
}

// redisTestDrain closes the client's idle connections: the client itself
// has no Close, as the plugin has no hook to call it from.
func redisTestDrain(c *redisClient) {
	c.poolMu.Lock()
	defer c.poolMu.Unlock()
	for _, cn := range c.idle {
		cn.nc.Close()
	}
	c.open -= len(c.idle)
	c.idle = c.idle[:0]
}

// redisOpen returns how many connections c has open, idle or in use.
func redisOpen(c *redisClient) int {
	c.poolMu.Lock()
	defer c.poolMu.Unlock()
	return c.open
}

// redisTestKey is a key no other test or run uses.
func redisTestKey(t *testing.T, suffix string) string {
	return "authkit-test:" + t.Name() + ":" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":" + suffix
}

// redisStateLog records a client's state callbacks.
type redisStateLog struct {
	mu     sync.Mutex
	events []string
}

func redisWatch(c *redisClient) *redisStateLog {
	l := &redisStateLog{}
	c.onState = func(up bool, reason string) { l.add(up, reason) }
	return l
}

func (l *redisStateLog) add(up bool, reason string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if up {
		l.events = append(l.events, "up")
	} else {
		l.events = append(l.events, "down: "+reason)
	}
}

func (l *redisStateLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.events...)
}

// redisWantDownOnce asserts that exactly one transition happened, to
// down, with a reason that contains want and not secret.
func redisWantDownOnce(t *testing.T, l *redisStateLog, want, secret string) {
	t.Helper()
	ev := l.get()
	if len(ev) != 1 || !strings.HasPrefix(ev[0], "down: ") || !strings.Contains(ev[0], want) {
		t.Fatalf("state changes %q, want one down naming %q", ev, want)
	}
	if secret != "" && strings.Contains(ev[0], secret) {
		t.Fatalf("the reason %q contains the secret", ev[0])
	}
}

// redisFake is an in-process server speaking just enough RESP for the
// client's failure paths. answer gets each command's arguments and returns
// the raw reply; "" closes the connection unanswered. With closeAfter set
// it closes each connection after its first reply.
type redisFake struct {
	ln      net.Listener
	accepts atomic.Int64

	mu         sync.Mutex
	answer     func(args []string) string
	closeAfter bool
	conns      []net.Conn
	open       int
	maxOpen    int
}

func newRedisFake(t *testing.T, answer func(args []string) string) *redisFake {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &redisFake{ln: ln, answer: answer}
	go f.serve()
	t.Cleanup(f.close)
	return f
}

func redisAnswerOK(args []string) string { return "+OK\r\n" }

func redisAnswerClose(args []string) string { return "" }

func (f *redisFake) addr() string { return f.ln.Addr().String() }

func (f *redisFake) setAnswer(answer func(args []string) string) {
	f.mu.Lock()
	f.answer = answer
	f.mu.Unlock()
}

func (f *redisFake) serve() {
	for {
		conn, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.accepts.Add(1)
		f.mu.Lock()
		f.conns = append(f.conns, conn)
		f.open++
		if f.open > f.maxOpen {
			f.maxOpen = f.open
		}
		f.mu.Unlock()
		go f.handle(conn)
	}
}

func (f *redisFake) handle(conn net.Conn) {
	defer func() {
		conn.Close()
		f.mu.Lock()
		f.open--
		f.mu.Unlock()
	}()
	r := bufio.NewReader(conn)
	for {
		args, err := redisFakeCommand(r)
		if err != nil {
			return
		}
		f.mu.Lock()
		answer, closeAfter := f.answer, f.closeAfter
		f.mu.Unlock()
		reply := answer(args)
		if reply == "" {
			return
		}
		if _, err := io.WriteString(conn, reply); err != nil || closeAfter {
			return
		}
	}
}

func (f *redisFake) close() {
	f.ln.Close()
	f.mu.Lock()
	for _, c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
}

// redisFakeCommand reads one command: an array of bulk strings.
func redisFakeCommand(r *bufio.Reader) ([]string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(line, "*") {
		return nil, errors.New("fake: not an array")
	}
	n, err := strconv.Atoi(strings.TrimSpace(line[1:]))
	if err != nil {
		return nil, err
	}
	args := make([]string, n)
	for i := range args {
		if line, err = r.ReadString('\n'); err != nil {
			return nil, err
		}
		size, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "$")))
		if err != nil {
			return nil, err
		}
		b := make([]byte, size+2)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		args[i] = string(b[:size])
	}
	return args, nil
}

// redisFakeClient is a client of an in-process server at addr, with the
// given command timeout and a backoff starting at backoff.
func redisFakeClient(t *testing.T, addr string, timeout, backoff time.Duration) *redisClient {
	t.Helper()
	opts, err := parseRedisURL("redis://"+addr, redisEnvFunc(nil))
	if err != nil {
		t.Fatal(err)
	}
	opts.dialTimeout = 2 * time.Second
	opts.commandTimeout = timeout
	opts.backoffMin = backoff
	c := newRedisClient(opts)
	t.Cleanup(func() { redisTestDrain(c) })
	return c
}

// redisDelayProxy forwards to target and holds each byte the server sends
// for delay: a server that answers, too slowly.
func redisDelayProxy(t *testing.T, target string, delay time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", target)
			if err != nil {
				client.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, client, server)
			mu.Unlock()
			go io.Copy(server, client)
			go redisDrip(client, server, delay)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

func redisDrip(dst, src net.Conn, delay time.Duration) {
	b := make([]byte, 1)
	for {
		if _, err := src.Read(b); err != nil {
			dst.Close()
			return
		}
		time.Sleep(delay)
		if _, err := dst.Write(b); err != nil {
			src.Close()
			return
		}
	}
}

// redisSilentListener accepts connections and never answers.
func redisSilentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

// redisClosedPort returns an address nothing listens on.
func redisClosedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// redisTestCAFile writes a self-signed CA certificate as PEM.
func redisTestCAFile(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "redis test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestParseRedisURL(t *testing.T) {
	caFile := redisTestCAFile(t)
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	// s3cr3t is the password in every case: no error may contain it or
	// a piece of it.
	tests := []struct {
		name, url string
		env       map[string]string
		// want: addr, username, password, db; tls: ServerName ("" for no
		// TLS) and whether extra CAs are trusted
		addr, user, password string
		db                   int
		tlsName              string
		extraCA              bool
		wantErr              string
	}{
		{name: "host only", url: "redis://cache", addr: "cache:6379"},
		{name: "port and database", url: "redis://cache:6380/2", addr: "cache:6380", db: 2},
		{name: "root path is database 0", url: "redis://cache/", addr: "cache:6379"},
		{name: "upper-case scheme", url: "REDIS://cache", addr: "cache:6379"},
		{name: "IPv6", url: "redis://[::1]:6380", addr: "[::1]:6380"},
		{name: "password only", url: "redis://:s3cr3t@cache", addr: "cache:6379", password: "s3cr3t"},
		{name: "user and password percent-decoded", url: "redis://auth%20kit:s3cr3t%40%3A%2F%25@cache",
			addr: "cache:6379", user: "auth kit", password: "s3cr3t@:/%"},
		{name: "environment when the URL has none", url: "redis://cache",
			env:  map[string]string{"AUTHKIT_REDIS_USERNAME": "authkit", "AUTHKIT_REDIS_PASSWORD": "s3cr3t"},
			addr: "cache:6379", user: "authkit", password: "s3cr3t"},
		{name: "the URL before the environment", url: "redis://authkit:s3cr3t@cache",
			env:  map[string]string{"AUTHKIT_REDIS_USERNAME": "other", "AUTHKIT_REDIS_PASSWORD": "other"},
			addr: "cache:6379", user: "authkit", password: "s3cr3t"},
		{name: "user in the URL, password in the environment", url: "redis://authkit@cache",
			env:  map[string]string{"AUTHKIT_REDIS_PASSWORD": "s3cr3t"},
			addr: "cache:6379", user: "authkit", password: "s3cr3t"},
		{name: "TLS verifies the host name", url: "rediss://cache.example.com",
			addr: "cache.example.com:6379", tlsName: "cache.example.com"},
		{name: "TLS with a CA file", url: "rediss://127.0.0.1:6380/1",
			env:  map[string]string{"AUTHKIT_REDIS_CA_FILE": caFile},
			addr: "127.0.0.1:6380", db: 1, tlsName: "127.0.0.1", extraCA: true},
		{name: "CA file ignored without TLS", url: "redis://cache",
			env:  map[string]string{"AUTHKIT_REDIS_CA_FILE": notPEM},
			addr: "cache:6379"},

		{name: "another scheme", url: "http://:s3cr3t@cache", wantErr: "redis:// or rediss://"},
		{name: "unix socket", url: "unix:///run/redis.sock", wantErr: "redis:// or rediss://"},
		{name: "no host", url: "redis://:s3cr3t@:6379", wantErr: "no host"},
		{name: "opaque", url: "redis:cache", wantErr: "no host"},
		{name: "port 0", url: "redis://:s3cr3t@cache:0", wantErr: "invalid port"},
		{name: "port out of range", url: "redis://:s3cr3t@cache:70000", wantErr: "invalid port"},
		{name: "database not a number", url: "redis://:s3cr3t@cache/abc", wantErr: "database number"},
		{name: "negative database", url: "redis://cache/-1", wantErr: "database number"},
		{name: "two path segments", url: "redis://cache/1/2", wantErr: "database number"},
		{name: "query parameter", url: "redis://:s3cr3t@cache?db=1", wantErr: "query"},
		{name: "fragment", url: "redis://cache/0#x", wantErr: "fragment"},
		{name: "unescaped slash in the password", url: "redis://authkit:s3/cr3t@cache", wantErr: "not a valid URL"},
		{name: "unescaped hash in the password", url: "redis://authkit:s3#cr3t@cache", wantErr: "not a valid URL"},
		{name: "bad escape in the password", url: "redis://authkit:s3cr3t%zz@cache", wantErr: "not a valid URL"},
		{name: "user without password", url: "redis://authkit@cache", wantErr: "no password"},
		{name: "unreadable CA file", url: "rediss://:s3cr3t@cache",
			env: map[string]string{"AUTHKIT_REDIS_CA_FILE": caFile + ".missing"}, wantErr: "AUTHKIT_REDIS_CA_FILE cannot be read"},
		{name: "CA file without PEM", url: "rediss://:s3cr3t@cache",
			env: map[string]string{"AUTHKIT_REDIS_CA_FILE": notPEM}, wantErr: "AUTHKIT_REDIS_CA_FILE holds no PEM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, err := parseRedisURL(tt.url, redisEnvFunc(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "cr3t") || strings.Contains(err.Error(), "s3") {
					t.Fatalf("err = %q shows the password", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if opts.addr != tt.addr || opts.username != tt.user || opts.password != tt.password || opts.db != tt.db {
				t.Fatalf("got %s user %q password %q db %d, want %s %q %q %d",
					opts.addr, opts.username, opts.password, opts.db, tt.addr, tt.user, tt.password, tt.db)
			}
			if (opts.tls != nil) != (tt.tlsName != "") {
				t.Fatalf("TLS %v, want %v", opts.tls != nil, tt.tlsName != "")
			}
			if opts.tls != nil && (opts.tls.ServerName != tt.tlsName || (opts.tls.RootCAs != nil) != tt.extraCA) {
				t.Fatalf("TLS server name %q, extra CAs %v; want %q, %v",
					opts.tls.ServerName, opts.tls.RootCAs != nil, tt.tlsName, tt.extraCA)
			}
		})
	}
}

func TestRedisAppendCommand(t *testing.T) {
	got := string(redisAppendCommand(nil, []string{"SET", "k", "a\r\nb", ""}))
	want := "*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\na\r\nb\r\n$0\r\n\r\n"
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestRedisReadReply(t *testing.T) {
	big := strings.Repeat("x", 5000) // more than the reader's buffer
	half := strings.Repeat("y", redisMaxReply/2+1)
	tests := []struct {
		name, raw string
		want      redisReply
		wantErr   string
	}{
		{name: "simple string", raw: "+OK\r\n", want: redisReply{kind: redisSimple, str: "OK"}},
		{name: "error", raw: "-ERR no\r\n", want: redisReply{kind: redisErrorReply, str: "ERR no"}},
		{name: "integer", raw: ":-42\r\n", want: redisReply{kind: redisInteger, num: -42}},
		{name: "bulk string", raw: "$5\r\nhello\r\n", want: redisReply{kind: redisBulk, str: "hello"}},
		{name: "empty bulk string", raw: "$0\r\n\r\n", want: redisReply{kind: redisBulk}},
		{name: "binary bulk string", raw: "$5\r\na\r\n\x00b\r\n", want: redisReply{kind: redisBulk, str: "a\r\n\x00b"}},
		{name: "bulk string larger than the buffer", raw: "$5000\r\n" + big + "\r\n", want: redisReply{kind: redisBulk, str: big}},
		{name: "null bulk string", raw: "$-1\r\n", want: redisReply{kind: redisNull}},
		{name: "null array", raw: "*-1\r\n", want: redisReply{kind: redisNull}},
		{name: "empty array", raw: "*0\r\n", want: redisReply{kind: redisArray, elems: []redisReply{}}},
		{name: "nested array", raw: "*2\r\n$1\r\na\r\n*2\r\n:1\r\n$-1\r\n", want: redisReply{kind: redisArray, elems: []redisReply{
			{kind: redisBulk, str: "a"},
			{kind: redisArray, elems: []redisReply{{kind: redisInteger, num: 1}, {kind: redisNull}}},
		}}},

		{name: "bulk string over the limit", raw: "$" + strconv.Itoa(redisMaxReply+1) + "\r\n", wantErr: "larger than 1 MiB"},
		{name: "array over the limit", raw: "*100000\r\n", wantErr: "larger than 1 MiB"},
		{name: "bulk strings over the limit together", raw: "*2\r\n$" + strconv.Itoa(len(half)) + "\r\n" + half + "\r\n$" +
			strconv.Itoa(len(half)) + "\r\n" + half + "\r\n", wantErr: "larger than 1 MiB"},
		{name: "arrays nested too deep", raw: strings.Repeat("*1\r\n", redisMaxDepth+1) + ":1\r\n", wantErr: "nested too deep"},
		{name: "unknown type", raw: "#t\r\n", wantErr: "unknown reply type"},
		{name: "no CRLF", raw: "+OK\n", wantErr: "without CRLF"},
		{name: "empty line", raw: "\r\n", wantErr: "without CRLF"},
		{name: "bad integer", raw: ":x\r\n", wantErr: "bad integer"},
		{name: "bad length", raw: "$-2\r\n", wantErr: "bad length"},
		{name: "bulk string without CRLF", raw: "$2\r\nabcd", wantErr: "bulk string without CRLF"},
		{name: "line too long", raw: "+" + big + "\r\n", wantErr: "longer than 4096"},
		{name: "cut off in a bulk string", raw: "$10\r\nabc", wantErr: io.ErrUnexpectedEOF.Error()},
		{name: "cut off in an array", raw: "*2\r\n:1\r\n", wantErr: io.ErrUnexpectedEOF.Error()},
		{name: "cut off in a line", raw: "+OK", wantErr: io.ErrUnexpectedEOF.Error()},
		{name: "nothing", raw: "", wantErr: io.EOF.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cn := &redisConn{r: bufio.NewReaderSize(strings.NewReader(tt.raw), redisReadSize), left: redisMaxReply}
			got, err := redisRead(cn, 0)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestRedisErrorHidesArguments(t *testing.T) {
	tests := []struct {
		name, msg       string
		code, errorText string
	}{
		{name: "plain message", msg: "WRONGTYPE Operation against a key holding the wrong kind of value",
			code: "WRONGTYPE", errorText: "redis: GET: WRONGTYPE Operation against a key holding the wrong kind of value"},
		{name: "echoed arguments", msg: "ERR unknown command 'SETX', with args beginning with: 'key' 's3cr3t'",
			code: "ERR", errorText: "redis: GET: ERR unknown command …"},
		{name: "double quotes", msg: `ERR Protocol error: "s3cr3t"`, code: "ERR", errorText: "redis: GET: ERR Protocol error …"},
		{name: "code only", msg: "NOAUTH", code: "NOAUTH", errorText: "redis: GET: NOAUTH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newRedisError("GET", tt.msg)
			if e.Code != tt.code || e.Error() != tt.errorText {
				t.Fatalf("code %q, error %q; want %q, %q", e.Code, e.Error(), tt.code, tt.errorText)
			}
			if strings.Contains(e.Message, "s3cr3t") {
				t.Fatalf("Message %q keeps an argument", e.Message)
			}
		})
	}
}

func TestRedisSetNXGetDel(t *testing.T) {
	c := redisTestClient(t, redisTestEnv(t, "AUTHKIT_TEST_REDIS_URL"), nil)
	ctx := context.Background()
	key := redisTestKey(t, "lock")
	if set, err := redisSet(ctx, c, key, "first", time.Minute, true); err != nil || !set {
		t.Fatalf("SET NX of a new key: set %v, err %v", set, err)
	}
	if set, err := redisSet(ctx, c, key, "second", time.Minute, true); err != nil || set {
		t.Fatalf("SET NX of an existing key: set %v, err %v", set, err)
	}
	if v, ok, err := redisGet(ctx, c, key); err != nil || !ok || v != "first" {
		t.Fatalf("GET = %q, %v, %v; want first", v, ok, err)
	}
	r, err := redisDo(ctx, c, "PTTL", key)
	if err != nil || r.kind != redisInteger || r.num <= 0 || r.num > 60000 {
		t.Fatalf("PTTL = %+v, %v; want 1..60000 ms", r, err)
	}
	if set, err := redisSet(ctx, c, key, "third", time.Minute, false); err != nil || !set {
		t.Fatalf("SET without NX: set %v, err %v", set, err)
	}
	if n, err := redisDel(ctx, c, key, redisTestKey(t, "missing")); err != nil || n != 1 {
		t.Fatalf("DEL = %d, %v; want 1", n, err)
	}
	if v, ok, err := redisGet(ctx, c, key); err != nil || ok {
		t.Fatalf("GET after DEL = %q, %v, %v; want none", v, ok, err)
	}
}

func TestRedisSetPXExpires(t *testing.T) {
	c := redisTestClient(t, redisTestEnv(t, "AUTHKIT_TEST_REDIS_URL"), nil)
	ctx := context.Background()
	key := redisTestKey(t, "short")
	if _, err := redisSet(ctx, c, key, "v", 20*time.Millisecond, false); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if _, ok, err := redisGet(ctx, c, key); err != nil || ok {
		t.Fatalf("GET after PX = %v, %v; want none", ok, err)
	}
	if _, err := redisSet(ctx, c, key, "v", 0, false); err == nil {
		t.Fatal("SET with no expiry was sent")
	}
}

func TestRedisPExpire(t *testing.T) {
	c := redisTestClient(t, redisTestEnv(t, "AUTHKIT_TEST_REDIS_URL"), nil)
	ctx := context.Background()
	key := redisTestKey(t, "k")
	if _, err := redisSet(ctx, c, key, "v", time.Minute, false); err != nil {
		t.Fatal(err)
	}
	if ok, err := redisPExpire(ctx, c, key, 5*time.Second); err != nil || !ok {
		t.Fatalf("PEXPIRE of a key: %v, %v", ok, err)
	}
	if r, err := redisDo(ctx, c, "PTTL", key); err != nil || r.num <= 0 || r.num > 5000 {
		t.Fatalf("PTTL = %+v, %v; want 1..5000 ms", r, err)
	}
	if ok, err := redisPExpire(ctx, c, redisTestKey(t, "missing"), time.Second); err != nil || ok {
		t.Fatalf("PEXPIRE of a missing key: %v, %v", ok, err)
	}
}

func TestRedisMGet(t *testing.T) {
	c := redisTestClient(t, redisTestEnv(t, "AUTHKIT_TEST_REDIS_URL"), nil)
	ctx := context.Background()
	a, b, missing := redisTestKey(t, "a"), redisTestKey(t, "b"), redisTestKey(t, "missing")
	for _, k := range []string{a, b} {
		if _, err := redisSet(ctx, c, k, "value of "+k, time.Minute, false); err != nil {
			t.Fatal(err)
		}
	}
	got, err := redisMGet(ctx, c, a, missing, b)
	if err != nil {
		t.Fatal(err)
	}
	want := []redisReply{{kind: redisBulk, str: "value of " + a}, {kind: redisNull}, {kind: redisBulk, str: "value of " + b}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("MGET = %+v, want %+v", got, want)
	}
}

func TestRedisXAddXRead(t *testing.T) {
	c := redisTestClient(t, redisTestEnv(t, "AUTHKIT_TEST_REDIS_URL"), nil)
	ctx := context.Background()
	key := redisTestKey(t, "stream")
	var ids []string
	for i := 0; i < 3; i++ {
		id, err := redisXAdd(ctx, c, key, 1000, "sid", "session_"+strconv.Itoa(i), "at", "now")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if _, err := redisPExpire(ctx, c, key, time.Minute); err != nil {
		t.Fatal(err)
	}
	all, err := redisXRead(ctx, c, key, "0", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 || all[0].id != ids[0] || all[2].id != ids[2] ||
		!reflect.DeepEqual(all[1].fieldValues, []string{"sid", "session_1", "at", "now"}) {
		t.Fatalf("XREAD from 0 = %+v, want ids %v", all, ids)
	}
	next, err := redisXRead(ctx, c, key, ids[0], 1)
	if err != nil || len(next) != 1 || next[0].id != ids[1] {
		t.Fatalf("XREAD COUNT 1 after the first = %+v, %v; want %s", next, err, ids[1])
	}
	none, err := redisXRead(ctx, c, key, ids[2], 10)
	if err != nil || len(none) != 0 {
		t.Fatalf("XREAD after the last = %+v, %v; want nothing", none, err)
	}
	if _, err := redisXAdd(ctx, c, key, 1000, "odd"); err == nil {
		t.Fatal("XADD with an odd number of fields and values was sent")
	}
}

func TestRedisXAddTrimsTheStream(t *testing.T) {
	c := redisTestClient(t, redisTestEnv(t, "AUTHKIT_TEST_REDIS_URL"), nil)
	ctx := context.Background()
	key := redisTestKey(t, "stream")
	for i := 0; i < 250; i++ {
		if _, err := redisXAdd(ctx, c, key, 10, "n", strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := redisPExpire(ctx, c, key, time.Minute); err != nil {
		t.Fatal(err)
	}
	// MAXLEN ~ trims whole nodes (100 entries by default): about 10 kept.
	r, err := redisDo(ctx, c, "XLEN", key)
	if err != nil || r.num < 10 || r.num >= 250 {
		t.Fatalf("XLEN = %+v, %v; want at least 10 and fewer than 250", r, err)
	}
}

func TestRedisPublish(t *testing.T) {
	c := redisTestClient(t, redisTestEnv(t, "AUTHKIT_TEST_REDIS_URL"), nil)
	if n, err := redisPublish(context.Background(), c, redisTestKey(t, "channel"), "signed-out"); err != nil || n != 0 {
		t.Fatalf("PUBLISH = %d, %v; want 0 receivers", n, err)
	}
}

func TestRedisBinarySafeValues(t *testing.T) {
	c := redisTestClient(t, redisTestEnv(t, "AUTHKIT_TEST_REDIS_URL"), nil)
	ctx := context.Background()
	large := make([]byte, 100<<10)
	if _, err := rand.Read(large); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, value string }{
		{"CR LF", "line one\r\nline two\r\n"},
		{"NUL and high bytes", "\x00\x01\xfe\xff\x00"},
		{"RESP look-alike", "$3\r\nabc\r\n*1\r\n+OK\r\n"},
		{"empty", ""},
		{"100 KiB random", string(large)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := redisTestKey(t, "\r\n\x00key")
			if _, err := redisSet(ctx, c, key, tt.value, time.Minute, false); err != nil {
				t.Fatal(err)
			}
			got, ok, err := redisGet(ctx, c, key)
			if err != nil || !ok || got != tt.value {
				t.Fatalf("GET: %d bytes, %v, %v; want the %d bytes stored", len(got), ok, err, len(tt.value))
			}
		})
	}
}

// redisAuthURL is the password-protected server's URL with user and
// password replaced (user "" for AUTH with the password alone).
func redisAuthURL(t *testing.T, user, password string) string {
	t.Helper()
	u, err := url.Parse(redisTestEnv(t, "AUTHKIT_TEST_REDIS_AUTH_URL"))
	if err != nil {
		t.Fatal(err)
	}
	if password == "" {
		password, _ = u.User.Password()
	}
	u.User = url.UserPassword(user, password)
	return u.String()
}

func redisWhoAmI(t *testing.T, c *redisClient) string {
	t.Helper()
	r, err := redisDo(context.Background(), c, "ACL", "WHOAMI")
	if err != nil {
		t.Fatal(err)
	}
	return r.str
}

func TestRedisAuthWithPassword(t *testing.T) {
	c := redisTestClient(t, redisAuthURL(t, "", ""), nil)
	if who := redisWhoAmI(t, c); who != "default" {
		t.Fatalf("signed in as %q, want default", who)
	}
}

func TestRedisAuthWithACLUser(t *testing.T) {
	c := redisTestClient(t, redisTestEnv(t, "AUTHKIT_TEST_REDIS_AUTH_URL"), nil)
	if who := redisWhoAmI(t, c); who != "authkit" {
		t.Fatalf("signed in as %q, want authkit", who)
	}
	if _, err := redisPublish(context.Background(), c, redisTestKey(t, "channel"), "x"); err != nil {
		t.Fatal(err)
	}
}

func TestRedisAuthFromTheEnvironment(t *testing.T) {
	u, err := url.Parse(redisTestEnv(t, "AUTHKIT_TEST_REDIS_AUTH_URL"))
	if err != nil {
		t.Fatal(err)
	}
	password, _ := u.User.Password()
	u.User = nil
	c := redisTestClient(t, u.String(), map[string]string{"AUTHKIT_REDIS_USERNAME": "authkit", "AUTHKIT_REDIS_PASSWORD": password})
	if who := redisWhoAmI(t, c); who != "authkit" {
		t.Fatalf("signed in as %q, want authkit", who)
	}
}

func TestRedisWrongPasswordMarksDown(t *testing.T) {
	const wrong = "wrong-s3cr3t-password"
	c := redisTestClient(t, redisAuthURL(t, "authkit", wrong), nil)
	states := redisWatch(c)
	ctx := context.Background()
	_, _, err := redisGet(ctx, c, "k")
	if err == nil || strings.Contains(err.Error(), wrong) || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Fatalf("err = %v, want WRONGPASS without the password", err)
	}
	if _, ok := err.(*redisError); ok {
		t.Fatal("an AUTH refusal is a *redisError, which says the server is fine")
	}
	if _, _, err := redisGet(ctx, c, "k"); err != errRedisUnavailable {
		t.Fatalf("second command: %v, want errRedisUnavailable", err)
	}
	redisWantDownOnce(t, states, "AUTH refused", wrong)
}

func TestRedisMissingPasswordMarksDown(t *testing.T) {
	u, err := url.Parse(redisTestEnv(t, "AUTHKIT_TEST_REDIS_AUTH_URL"))
	if err != nil {
		t.Fatal(err)
	}
	u.User = nil
	c := redisTestClient(t, u.String(), nil)
	states := redisWatch(c)
	if _, _, err := redisGet(context.Background(), c, "k"); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Fatalf("err = %v, want NOAUTH", err)
	}
	redisWantDownOnce(t, states, "NOAUTH", "")
}

func TestRedisSelectIsolatesDatabases(t *testing.T) {
	base := redisTestEnv(t, "AUTHKIT_TEST_REDIS_URL")
	db1 := redisTestClient(t, base+"/1", nil)
	db0 := redisTestClient(t, base+"/0", nil)
	ctx := context.Background()
	key := redisTestKey(t, "k")
	if _, err := redisSet(ctx, db1, key, "in db 1", time.Minute, false); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := redisGet(ctx, db0, key); err != nil || ok {
		t.Fatalf("db 0 sees db 1's key: %v, %v", ok, err)
	}
	if v, ok, err := redisGet(ctx, db1, key); err != nil || !ok || v != "in db 1" {
		t.Fatalf("db 1: %q, %v, %v", v, ok, err)
	}
}

func TestRedisTLSWithCAFile(t *testing.T) {
	c := redisTestClient(t, redisTestEnv(t, "AUTHKIT_TEST_REDIS_TLS_URL"),
		map[string]string{"AUTHKIT_REDIS_CA_FILE": redisTestEnv(t, "AUTHKIT_TEST_REDIS_CA_FILE")})
	ctx := context.Background()
	key := redisTestKey(t, "k")
	if _, err := redisSet(ctx, c, key, "over TLS", time.Minute, false); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := redisGet(ctx, c, key); err != nil || !ok || v != "over TLS" {
		t.Fatalf("GET over TLS: %q, %v, %v", v, ok, err)
	}
}

func TestRedisTLSWithoutCAFails(t *testing.T) {
	c := redisTestClient(t, redisTestEnv(t, "AUTHKIT_TEST_REDIS_TLS_URL"), nil)
	states := redisWatch(c)
	if _, _, err := redisGet(context.Background(), c, "k"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("err = %v, want a certificate error", err)
	}
	redisWantDownOnce(t, states, "TLS handshake", "")
}

func TestRedisWrongTypeIsARedisError(t *testing.T) {
	c := redisTestClient(t, redisTestEnv(t, "AUTHKIT_TEST_REDIS_URL"), nil)
	states := redisWatch(c)
	ctx := context.Background()
	key := redisTestKey(t, "string")
	if _, err := redisSet(ctx, c, key, "v", time.Minute, false); err != nil {
		t.Fatal(err)
	}
	_, err := redisXRead(ctx, c, key, "0", 1)
	e, ok := err.(*redisError)
	if !ok || e.Code != "WRONGTYPE" || e.Command != "XREAD" {
		t.Fatalf("err = %#v, want a WRONGTYPE *redisError", err)
	}
	if _, ok, err := redisGet(ctx, c, key); err != nil || !ok {
		t.Fatalf("GET after the error reply: %v, %v", ok, err)
	}
	if ev := states.get(); len(ev) != 0 {
		t.Fatalf("state changes %q after an error reply", ev)
	}
}

func TestRedisConcurrentUse(t *testing.T) {
	c := redisTestClient(t, redisTestEnv(t, "AUTHKIT_TEST_REDIS_URL"), nil)
	prefix := redisTestKey(t, "")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			ctx := context.Background()
			for i := 0; i < 25; i++ {
				key := prefix + strconv.Itoa(g) + ":" + strconv.Itoa(i)
				if _, err := redisSet(ctx, c, key, key, time.Minute, false); err != nil {
					errs <- err
					return
				}
				if v, ok, err := redisGet(ctx, c, key); err != nil || !ok || v != key {
					errs <- errors.New("GET " + key + " = " + v)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := redisOpen(c); n > redisMaxIdle {
		t.Fatalf("%d connections left open, want at most %d idle", n, redisMaxIdle)
	}
}

func TestRedisCommandTimeoutMarksDown(t *testing.T) {
	fake := newRedisFake(t, redisAnswerOK)
	c := redisFakeClient(t, redisDelayProxy(t, fake.addr(), 30*time.Millisecond), 50*time.Millisecond, time.Minute)
	states := redisWatch(c)
	start := time.Now()
	_, err := redisSet(context.Background(), c, "k", "v", time.Minute, false)
	if err == nil || !strings.Contains(err.Error(), "no reply within 50ms") {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("a 50 ms command timeout returned after %v", d)
	}
	redisWantDownOnce(t, states, "no reply within", "")
	start = time.Now()
	if _, _, err := redisGet(context.Background(), c, "k"); err != errRedisUnavailable {
		t.Fatalf("next command: %v, want errRedisUnavailable", err)
	}
	if d := time.Since(start); d > 250*time.Millisecond {
		t.Fatalf("a command while down took %v", d)
	}
}

func TestRedisContextDeadlineWins(t *testing.T) {
	c := redisFakeClient(t, redisSilentListener(t), 10*time.Second, time.Minute)
	states := redisWatch(c)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, _, err := redisGet(ctx, c, "k"); err == nil {
		t.Fatal("a silent server answered")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("a 100 ms context deadline returned after %v", d)
	}
	// The caller ran out of time, not the server: not an outage.
	if ev := states.get(); len(ev) != 0 || c.down.Load() {
		t.Fatalf("state changes %q, down %v", ev, c.down.Load())
	}
}

func TestRedisUnreachableServerMarksDown(t *testing.T) {
	c := redisFakeClient(t, redisClosedPort(t), time.Second, time.Minute)
	states := redisWatch(c)
	if _, _, err := redisGet(context.Background(), c, "k"); err == nil || !strings.Contains(err.Error(), "connecting") {
		t.Fatalf("err = %v, want a connection error", err)
	}
	redisWantDownOnce(t, states, "refused", "")
}

func TestRedisNoDialWhileDown(t *testing.T) {
	fake := newRedisFake(t, redisAnswerClose)
	c := redisFakeClient(t, fake.addr(), time.Second, time.Minute)
	ctx := context.Background()
	if _, _, err := redisGet(ctx, c, "k"); err == nil || err == errRedisUnavailable {
		t.Fatalf("first command: %v, want the failure", err)
	}
	for i := 0; i < 20; i++ {
		if _, _, err := redisGet(ctx, c, "k"); err != errRedisUnavailable {
			t.Fatalf("command %d while down: %v", i, err)
		}
	}
	if n := fake.accepts.Load(); n != 1 {
		t.Fatalf("the server accepted %d connections, want 1", n)
	}
}

func TestRedisRecoversAfterBackoff(t *testing.T) {
	fake := newRedisFake(t, redisAnswerClose)
	c := redisFakeClient(t, fake.addr(), time.Second, 200*time.Millisecond)
	states := redisWatch(c)
	ctx := context.Background()
	if _, err := redisSet(ctx, c, "k", "v", time.Minute, false); err == nil {
		t.Fatal("the first command succeeded")
	}
	if _, err := redisSet(ctx, c, "k", "v", time.Minute, false); err != errRedisUnavailable {
		t.Fatalf("during the backoff: %v", err)
	}
	fake.setAnswer(redisAnswerOK)
	time.Sleep(400 * time.Millisecond)
	for i := 0; i < 2; i++ {
		if _, err := redisSet(ctx, c, "k", "v", time.Minute, false); err != nil {
			t.Fatalf("command %d after the backoff: %v", i, err)
		}
	}
	if ev := states.get(); len(ev) != 2 || !strings.HasPrefix(ev[0], "down: ") || ev[1] != "up" {
		t.Fatalf("state changes %q, want down then up", ev)
	}
}

func TestRedisFailedProbeDoublesBackoff(t *testing.T) {
	fake := newRedisFake(t, redisAnswerClose)
	c := redisFakeClient(t, fake.addr(), time.Second, 50*time.Millisecond)
	c.opts.backoffMax = 150 * time.Millisecond
	states := redisWatch(c)
	var got []time.Duration
	for i := 0; i < 4; i++ {
		if _, _, err := redisGet(context.Background(), c, "k"); err == nil || err == errRedisUnavailable {
			t.Fatalf("attempt %d: %v, want a failure from the server", i, err)
		}
		c.mu.Lock()
		got = append(got, c.backoff)
		wait := time.Until(c.retryAt)
		c.mu.Unlock()
		time.Sleep(wait + 20*time.Millisecond)
	}
	want := []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 150 * time.Millisecond, 150 * time.Millisecond}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("backoffs %v, want %v", got, want)
	}
	redisWantDownOnce(t, states, "EOF", "")
}

func TestRedisServerStateErrorsMarkDown(t *testing.T) {
	tests := []struct{ name, reply string }{
		{"loading", "-LOADING Redis is loading the dataset in memory\r\n"},
		{"read-only replica", "-READONLY You can't write against a read only replica.\r\n"},
		{"cluster", "-MOVED 3999 127.0.0.1:6381\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reply := tt.reply
			fake := newRedisFake(t, func(args []string) string { return reply })
			c := redisFakeClient(t, fake.addr(), time.Second, time.Minute)
			states := redisWatch(c)
			_, err := redisSet(context.Background(), c, "k", "v", time.Minute, false)
			if _, ok := err.(*redisError); err == nil || ok {
				t.Fatalf("err = %#v, want a failure that is not a *redisError", err)
			}
			redisWantDownOnce(t, states, reply[1:4], "")
		})
	}
}

func TestRedisGarbageIsAProtocolError(t *testing.T) {
	tests := []struct{ name, reply string }{
		{"not RESP", "hello\r\n"},
		{"RESP3 type", "#t\r\n"},
		{"a reply too many", "+OK\r\n+OK\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reply := tt.reply
			fake := newRedisFake(t, func(args []string) string { return reply })
			c := redisFakeClient(t, fake.addr(), time.Second, time.Minute)
			states := redisWatch(c)
			if _, err := redisSet(context.Background(), c, "k", "v", time.Minute, false); err == nil || !strings.Contains(err.Error(), "protocol error") {
				t.Fatalf("err = %v, want a protocol error", err)
			}
			redisWantDownOnce(t, states, "protocol error", "")
			if n := redisOpen(c); n != 0 {
				t.Fatalf("%d connections still open after a protocol error", n)
			}
		})
	}
}

func TestRedisRefusesOversizedReplies(t *testing.T) {
	under := strings.Repeat("x", redisMaxReply-64)
	tests := []struct {
		name, reply string
		wantErr     string
	}{
		{"bulk string over 1 MiB", "$" + strconv.Itoa(redisMaxReply+1) + "\r\n", "larger than 1 MiB"},
		{"array of a million", "*1000000\r\n", "larger than 1 MiB"},
		{"bulk string just under 1 MiB", "$" + strconv.Itoa(len(under)) + "\r\n" + under + "\r\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reply := tt.reply
			fake := newRedisFake(t, func(args []string) string { return reply })
			c := redisFakeClient(t, fake.addr(), 2*time.Second, time.Minute)
			v, _, err := redisGet(context.Background(), c, "k")
			if tt.wantErr == "" {
				if err != nil || v != under {
					t.Fatalf("%d bytes, err %v; want the value", len(v), err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestRedisReusesOneConnection(t *testing.T) {
	fake := newRedisFake(t, redisAnswerOK)
	c := redisFakeClient(t, fake.addr(), time.Second, time.Minute)
	for i := 0; i < 10; i++ {
		if _, err := redisSet(context.Background(), c, "k", "v", time.Minute, false); err != nil {
			t.Fatal(err)
		}
	}
	if n := fake.accepts.Load(); n != 1 {
		t.Fatalf("10 sequential commands opened %d connections, want 1", n)
	}
}

func TestRedisRetriesAConnectionTheServerClosed(t *testing.T) {
	fake := newRedisFake(t, redisAnswerOK)
	fake.closeAfter = true
	c := redisFakeClient(t, fake.addr(), time.Second, time.Minute)
	states := redisWatch(c)
	for i := 0; i < 3; i++ {
		if _, err := redisSet(context.Background(), c, "k", "v", time.Minute, false); err != nil {
			t.Fatalf("command %d: %v", i, err)
		}
	}
	if n := fake.accepts.Load(); n != 3 {
		t.Fatalf("%d connections, want 3 (one per command)", n)
	}
	if ev := states.get(); len(ev) != 0 {
		t.Fatalf("state changes %q: an idle connection the server closed is not an outage", ev)
	}
}

// redisAnswerEcho answers GET key with key, after a pause that leaves
// commands in flight together.
func redisAnswerEcho(args []string) string {
	time.Sleep(time.Millisecond)
	return "$" + strconv.Itoa(len(args[1])) + "\r\n" + args[1] + "\r\n"
}

func redisEchoRound(c *redisClient, round int, errs chan error) {
	var wg sync.WaitGroup
	for g := 0; g < redisMaxConns; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			key := strconv.Itoa(round) + ":" + strconv.Itoa(g)
			if v, _, err := redisGet(context.Background(), c, key); err != nil || v != key {
				errs <- errors.New("GET " + key + " answered " + strconv.Quote(v))
			}
		}(g)
	}
	wg.Wait()
}

// Each command must have its connection to itself: a connection handed to
// two commands would mix their replies.
func TestRedisPoolHandsEachConnectionToOneCommand(t *testing.T) {
	fake := newRedisFake(t, redisAnswerEcho)
	c := redisFakeClient(t, fake.addr(), 5*time.Second, time.Minute)
	errs := make(chan error, redisMaxConns*30)
	for round := 0; round < 30; round++ {
		redisEchoRound(c, round, errs)
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := redisOpen(c); n != redisMaxIdle {
		t.Fatalf("%d connections open afterwards, want the %d idle ones", n, redisMaxIdle)
	}
}

func TestRedisBoundsOpenConnections(t *testing.T) {
	release := make(chan struct{})
	fake := newRedisFake(t, func(args []string) string {
		<-release
		return "+OK\r\n"
	})
	c := redisFakeClient(t, fake.addr(), 5*time.Second, time.Minute)
	states := redisWatch(c)
	var wg sync.WaitGroup
	results := make(chan error, redisMaxConns+8)
	for i := 0; i < redisMaxConns+8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := redisSet(context.Background(), c, "k", "v", time.Minute, false)
			results <- err
		}()
	}
	// The 8 commands beyond the bound fail at once; the others wait for
	// the server.
	busy := 0
	for busy < 8 {
		select {
		case err := <-results:
			if err != errRedisBusy {
				t.Fatalf("a command ended with %v while the server held %d", err, redisMaxConns)
			}
			busy++
		case <-time.After(5 * time.Second):
			t.Fatalf("%d commands failed fast, want 8", busy)
		}
	}
	close(release)
	wg.Wait()
	close(results)
	for err := range results {
		if err != nil {
			t.Error(err)
		}
	}
	fake.mu.Lock()
	maxOpen := fake.maxOpen
	fake.mu.Unlock()
	if maxOpen > redisMaxConns {
		t.Fatalf("%d connections open at once, want at most %d", maxOpen, redisMaxConns)
	}
	if n := redisOpen(c); n != redisMaxIdle {
		t.Fatalf("%d connections open afterwards, want the %d idle ones", n, redisMaxIdle)
	}
	if ev := states.get(); len(ev) != 0 {
		t.Fatalf("state changes %q: a busy pool is not an outage", ev)
	}
}

func redisTestNop() {}

// redisCannedConn answers every command written to it with reply, in
// memory: an allocation count is then the client's alone.
type redisCannedConn struct {
	reply, unread string
}

func (c *redisCannedConn) Write(p []byte) (int, error) {
	c.unread = c.reply
	return len(p), nil
}

func (c *redisCannedConn) Read(p []byte) (int, error) {
	n := copy(p, c.unread)
	c.unread = c.unread[n:]
	return n, nil
}

func (c *redisCannedConn) Close() error                       { return nil }
func (c *redisCannedConn) LocalAddr() net.Addr                { return nil }
func (c *redisCannedConn) RemoteAddr() net.Addr               { return nil }
func (c *redisCannedConn) SetDeadline(t time.Time) error      { return nil }
func (c *redisCannedConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *redisCannedConn) SetWriteDeadline(t time.Time) error { return nil }

func TestRedisCommandAllocations(t *testing.T) {
	if testing.AllocsPerRun(10, redisTestNop) > 0 {
		t.Skip("interpreted: every call allocates its frame, the count says nothing")
	}
	c := newRedisClient(redisOptions{addr: "canned"})
	conn := &redisCannedConn{reply: "$5\r\nhello\r\n"}
	c.open = 1
	c.idle = append(c.idle, &redisConn{nc: conn, r: bufio.NewReaderSize(conn, redisReadSize)})
	ctx := context.Background()
	var err error
	allocs := testing.AllocsPerRun(100, func() {
		_, _, err = redisGet(ctx, c, "session:abc")
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%.1f allocations per GET", allocs)
	// The value's string; the command is built in the connection's buffer.
	if allocs > 1 {
		t.Fatalf("GET allocates %.0f times, want at most 1", allocs)
	}
}
