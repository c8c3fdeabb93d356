package authkit

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// A Redis-protocol (RESP2) client for what replicas share: refresh locks,
// refresh results, revocations. Redis is an optimisation here, never a
// dependency: every command is bounded by a short timeout, and after a
// failure the client answers errRedisUnavailable at once for a backoff
// instead of making each request wait for a server that is down.
//
// The per-command path is plain functions taking the client as an argument
// (a method call on a plugin type costs about three plain calls under
// Traefik's interpreter), and the byte work is left to bufio and strconv.

const (
	redisDefaultPort = "6379"
	// redisDefaultCommandTimeout bounds one command's round trip. A Redis
	// next to Traefik answers in well under a millisecond; a request must
	// not wait long for one that does not.
	redisDefaultCommandTimeout = 50 * time.Millisecond
	// redisDefaultDialTimeout bounds connecting: TCP, TLS handshake, AUTH
	// and SELECT. It is paid once per connection, not per command.
	redisDefaultDialTimeout = 250 * time.Millisecond
	redisDefaultBackoffMin  = time.Second
	redisDefaultBackoffMax  = 30 * time.Second
	// redisMaxIdle connections are kept for reuse; redisMaxConns bounds the
	// open ones, idle included, so a burst of requests cannot open
	// unbounded connections to a slow server. A healthy server answers in
	// well under a millisecond, so 32 commands in flight at once is a slow
	// server or a burst: the command beyond fails at once (errRedisBusy).
	redisMaxIdle  = 8
	redisMaxConns = 32
	// redisMaxReply bounds the bytes of one reply (bulk strings, lines, and
	// redisElemCost per array element), so a misbehaving server cannot make
	// the proxy buffer without bound. The plugin stores values of a few
	// kilobytes.
	redisMaxReply  = 1 << 20
	redisElemCost  = 16
	redisMaxDepth  = 8
	redisReadSize  = 4096
	redisKeepWrite = 64 << 10 // larger command buffers are not kept for reuse
)

var (
	// errRedisUnavailable is returned without contacting the server while
	// the client backs off after a failure.
	errRedisUnavailable = errors.New("redis: unavailable after a recent failure")
	// errRedisBusy is returned at once when redisMaxConns connections are
	// in use. It says nothing about the server, so it does not put the
	// client down.
	errRedisBusy = errors.New("redis: all connections busy")
)

// redisOptions is what the client needs to reach one server. parseRedisURL
// fills the address, credentials, database and TLS; zero durations select
// the defaults above.
type redisOptions struct {
	addr     string // host:port
	username string // empty: AUTH with the password alone
	password string // empty: no AUTH
	db       int
	tls      *tls.Config // nil for redis://

	dialTimeout    time.Duration
	commandTimeout time.Duration
	backoffMin     time.Duration
	backoffMax     time.Duration
}

// parseRedisURL reads redis://[user[:password]@]host[:port][/db] and its
// TLS form rediss://. User name and password are percent-decoded; when the
// URL has none, AUTHKIT_REDIS_USERNAME and AUTHKIT_REDIS_PASSWORD (read
// through env, os.Getenv in the plugin) supply them, so the password need
// not sit in Traefik's dynamic configuration. For rediss://,
// AUTHKIT_REDIS_CA_FILE names a PEM file of CAs trusted besides the
// system's (a self-signed server); the host name is always verified. No
// error quotes the password or any part of the URL: a password with an
// unescaped / ? or # spills into the port, path, query or fragment.
func parseRedisURL(raw string, env func(string) string) (redisOptions, error) {
	var opts redisOptions
	u, err := url.Parse(raw)
	if err != nil {
		return opts, configError("redisUrl", "is not a valid URL (a bad port, or an unescaped : / ? # @ or % in the user name or password)")
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return opts, configError("redisUrl", "must start with redis:// or rediss://")
	}
	if u.Opaque != "" || u.Hostname() == "" {
		return opts, configError("redisUrl", "has no host")
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return opts, configError("redisUrl", "must not have query parameters or a fragment: none are supported")
	}
	port := u.Port()
	if port == "" {
		port = redisDefaultPort
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return opts, configError("redisUrl", "has an invalid port")
	}
	opts.addr = net.JoinHostPort(u.Hostname(), port)
	if db := strings.TrimPrefix(u.Path, "/"); db != "" {
		n, err := strconv.ParseUint(db, 10, 31)
		if err != nil {
			return opts, configError("redisUrl", "path must be a database number such as /1")
		}
		opts.db = int(n)
	}
	if u.User != nil {
		opts.username = u.User.Username()
		opts.password, _ = u.User.Password()
	}
	if opts.username == "" {
		opts.username = env("AUTHKIT_REDIS_USERNAME")
	}
	if opts.password == "" {
		opts.password = env("AUTHKIT_REDIS_PASSWORD")
	}
	if opts.username != "" && opts.password == "" {
		return opts, configError("redisUrl", "names a user but no password (put it in the URL or AUTHKIT_REDIS_PASSWORD)")
	}
	if u.Scheme == "rediss" {
		cfg, err := redisTLSConfig(u.Hostname(), env("AUTHKIT_REDIS_CA_FILE"))
		if err != nil {
			return opts, err
		}
		opts.tls = cfg
	}
	return opts, nil
}

// redisTLSConfig verifies the server as host with the system's roots, plus
// the certificates of caFile when it is set.
func redisTLSConfig(host, caFile string) (*tls.Config, error) {
	cfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return cfg, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, configError("AUTHKIT_REDIS_CA_FILE", "cannot be read: "+err.Error())
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, configError("AUTHKIT_REDIS_CA_FILE", "holds no PEM certificate: "+strconv.Quote(caFile))
	}
	cfg.RootCAs = pool
	return cfg, nil
}

// redisClient is safe for concurrent use. It dials lazily, on the first
// command that finds no idle connection, keeps up to redisMaxIdle idle
// connections and opens at most redisMaxConns; a command beyond that fails
// at once with errRedisBusy rather than wait. It starts no goroutine:
// Traefik builds a new middleware on every configuration reload and never
// closes the old one, whose idle connections are then closed by the
// garbage collector's finalizers.
//
// The pool is a slice under a mutex, not channels: yaegi v0.16.1 keeps one
// case table per select statement and shares it between the goroutines
// running it, so a select that sends can send another goroutine's value
// (one connection handed out twice, another lost) and one that receives
// can wait on another goroutine's channels.
//
// Health: the client starts up. A command that fails (dial, TLS, AUTH,
// timeout, connection lost, protocol error, or a server-state error reply
// such as LOADING) puts it down: for backoffMin every command returns
// errRedisUnavailable without dialing; then one command tries the server,
// and success brings the client up, failure doubles the backoff (up to
// backoffMax). A Redis error reply to the command itself (*redisError),
// errRedisBusy and the caller's own context ending change nothing.
type redisClient struct {
	opts redisOptions
	down atomic.Bool

	poolMu sync.Mutex
	idle   []*redisConn // most recently used last
	open   int          // idle or in use

	// onState, when set (before the first command), is called once per
	// transition: up false with the failure that put the client down, then
	// up true with an empty reason when it recovers. reason never holds a
	// password or a command's arguments. It runs under the client's state
	// lock, so transitions arrive in order: it must be quick (a log line)
	// and must not use the client.
	onState func(up bool, reason string)

	mu      sync.Mutex
	retryAt time.Time
	backoff time.Duration
	probing bool // one command is trying the server while down
}

// redisConn is one connection with its reader and a command buffer reused
// from command to command.
type redisConn struct {
	nc     net.Conn
	r      *bufio.Reader
	buf    []byte
	left   int  // bytes the reply being read may still use
	reused bool // came from the idle pool: the server may have closed it
}

func newRedisClient(opts redisOptions) *redisClient {
	if opts.dialTimeout <= 0 {
		opts.dialTimeout = redisDefaultDialTimeout
	}
	if opts.commandTimeout <= 0 {
		opts.commandTimeout = redisDefaultCommandTimeout
	}
	if opts.backoffMin <= 0 {
		opts.backoffMin = redisDefaultBackoffMin
	}
	if opts.backoffMax <= 0 {
		opts.backoffMax = redisDefaultBackoffMax
	}
	if opts.backoffMax < opts.backoffMin {
		opts.backoffMax = opts.backoffMin
	}
	return &redisClient{opts: opts, idle: make([]*redisConn, 0, redisMaxIdle)}
}

// redisKind is the type of a RESP2 reply. The zero value is null (a
// missing key's bulk string or a null array: RESP2 does not tell them
// apart usefully).
type redisKind byte

const (
	redisNull redisKind = iota
	redisSimple
	redisErrorReply // only inside arrays: a top-level one is a *redisError
	redisInteger
	redisBulk
	redisArray
)

// redisReply is one RESP2 reply: str holds a simple string, an error's
// message or a bulk string (binary-safe), num an integer, elems an array's
// elements.
type redisReply struct {
	kind  redisKind
	str   string
	num   int64
	elems []redisReply
}

// redisError is the server's refusal of a command (WRONGTYPE, syntax,
// NOPERM, …): the server works and the connection stays usable. Check it
// with err.(*redisError). Every other error redisDo returns
// (errRedisUnavailable, errRedisBusy, ctx.Err(), or a failure) means the
// command did not get an answer from a working server.
type redisError struct {
	Command string // as the caller named it: "SET"
	Code    string // the message's first word: "WRONGTYPE", "ERR", …
	// Message is the server's, cut before its first quote: Redis quotes
	// the arguments it echoes ("unknown command 'X', with args beginning
	// with: 'key' 'value'"), and arguments may be secrets.
	Message string
}

func (e *redisError) Error() string {
	return "redis: " + e.Command + ": " + e.Message
}

func newRedisError(command, msg string) *redisError {
	if i := strings.IndexAny(msg, `'"`); i >= 0 {
		msg = strings.TrimRight(msg[:i], " ,:") + " …"
	}
	code := msg
	if i := strings.IndexByte(msg, ' '); i >= 0 {
		code = msg[:i]
	}
	return &redisError{Command: command, Code: code, Message: msg}
}

// redisServerFault reports error replies that say the server (or this
// client's access to it) is unusable for now, not that one command was
// wrong: such a reply counts as a failure and puts the client down.
func redisServerFault(code string) bool {
	switch code {
	case "NOAUTH", "WRONGPASS", "LOADING", "READONLY", "MASTERDOWN", "BUSY", "MOVED", "ASK", "CLUSTERDOWN":
		return true
	}
	return false
}

// redisDo sends one command and returns its reply. Arguments are
// binary-safe; args[0] is the command name, which alone appears in errors.
// The command gets the client's command timeout, or less when ctx's
// deadline comes first; ctx's cancellation is checked before the command
// starts and bounds dialing.
func redisDo(ctx context.Context, c *redisClient, args ...string) (redisReply, error) {
	if len(args) == 0 {
		return redisReply{}, errors.New("redis: no command")
	}
	probe := false
	if c.down.Load() {
		if !redisMayProbe(c) {
			return redisReply{}, errRedisUnavailable
		}
		probe = true
	}
	reply, failed, err := redisRun(ctx, c, args)
	if probe || failed {
		redisRecord(c, probe, err, failed)
	}
	return reply, err
}

// redisRun does redisDo's work; failed reports an error that is the
// server's fault.
func redisRun(ctx context.Context, c *redisClient, args []string) (redisReply, bool, error) {
	if err := ctx.Err(); err != nil {
		return redisReply{}, false, err
	}
	cn, failed, err := redisAcquire(ctx, c)
	if err != nil {
		return redisReply{}, failed, err
	}
	deadline, own := redisDeadline(ctx, c.opts.commandTimeout)
	reply, err := redisRoundTrip(cn, deadline, args)
	if err != nil {
		return redisRetry(ctx, c, cn, args, err, own)
	}
	if reply.kind == redisErrorReply {
		return redisRefused(c, cn, args[0], reply.str)
	}
	redisRelease(c, cn)
	return reply, false, nil
}

// redisRetry handles a round trip that failed with err. When cn came from
// the pool and nothing of the reply arrived, the server had closed it
// before the command reached it (a restart, its idle timeout): the command
// is sent once more on a new connection. Any other error closes cn.
func redisRetry(ctx context.Context, c *redisClient, cn *redisConn, args []string, err error, own bool) (redisReply, bool, error) {
	if cn.reused && redisStale(err) {
		cn.nc.Close()
		var failed bool
		cn, failed, err = redisDialCounted(ctx, c)
		if err != nil {
			return redisReply{}, failed, err
		}
		var deadline time.Time
		var reply redisReply
		deadline, own = redisDeadline(ctx, c.opts.commandTimeout)
		reply, err = redisRoundTrip(cn, deadline, args)
		if err == nil && reply.kind == redisErrorReply {
			return redisRefused(c, cn, args[0], reply.str)
		}
		if err == nil {
			redisRelease(c, cn)
			return reply, false, nil
		}
	}
	redisClose(c, cn)
	if own && redisTimeout(err) {
		return redisReply{}, true, errors.New("redis: " + args[0] + ": no reply within " + c.opts.commandTimeout.String())
	}
	return redisReply{}, redisFault(ctx, err, own), errors.New("redis: " + args[0] + ": " + err.Error())
}

// redisRefused turns an error reply into a *redisError, or, for a reply
// that says the server is unusable, into a failure.
func redisRefused(c *redisClient, cn *redisConn, command, msg string) (redisReply, bool, error) {
	e := newRedisError(command, msg)
	if redisServerFault(e.Code) {
		redisClose(c, cn)
		return redisReply{}, true, errors.New(e.Error())
	}
	redisRelease(c, cn)
	return redisReply{}, false, e
}

// redisFault reports whether err, which ended a dial or a command, is the
// server's fault: not when the caller's context ended, nor when the
// caller's deadline, earlier than the client's own (own false), ran out.
func redisFault(ctx context.Context, err error, own bool) bool {
	return ctx.Err() == nil && (own || !redisTimeout(err))
}

func redisTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded)
}

// redisDeadline returns now+timeout, or ctx's deadline when that is earlier
// (own false: running out of time is then the caller's doing, not the
// server's).
func redisDeadline(ctx context.Context, timeout time.Duration) (time.Time, bool) {
	d := time.Now().Add(timeout)
	if cd, ok := ctx.Deadline(); ok && cd.Before(d) {
		return cd, false
	}
	return d, true
}

// redisMayProbe reports whether this command may try the server while the
// client is down: the backoff has passed and no other command is trying.
func redisMayProbe(c *redisClient) bool {
	c.mu.Lock()
	ok := !c.probing && !time.Now().Before(c.retryAt)
	if ok {
		c.probing = true
	}
	c.mu.Unlock()
	return ok
}

// redisRecord updates the health after a probe or a failure. Failures of
// commands that were already in flight when the client went down, and
// successes other than the probe's, change nothing.
func redisRecord(c *redisClient, probe bool, err error, failed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if probe {
		c.probing = false
	}
	wasDown := c.down.Load()
	if failed {
		if wasDown && !probe {
			return
		}
		if wasDown {
			c.backoff *= 2
			if c.backoff > c.opts.backoffMax {
				c.backoff = c.opts.backoffMax
			}
		} else {
			c.backoff = c.opts.backoffMin
		}
		c.retryAt = time.Now().Add(c.backoff)
		if !wasDown {
			c.down.Store(true)
			redisNotify(c, false, err.Error())
		}
		return
	}
	_, refused := err.(*redisError)
	if probe && wasDown && (err == nil || refused) {
		c.down.Store(false)
		redisNotify(c, true, "")
	}
}

func redisNotify(c *redisClient, up bool, reason string) {
	if c.onState != nil {
		c.onState(up, reason)
	}
}

// redisAcquire returns the most recently used idle connection, or dials
// one when fewer than redisMaxConns are open, or fails with errRedisBusy.
func redisAcquire(ctx context.Context, c *redisClient) (*redisConn, bool, error) {
	c.poolMu.Lock()
	if n := len(c.idle); n > 0 {
		cn := c.idle[n-1]
		c.idle[n-1] = nil
		c.idle = c.idle[:n-1]
		c.poolMu.Unlock()
		return cn, false, nil
	}
	if c.open >= redisMaxConns {
		c.poolMu.Unlock()
		return nil, false, errRedisBusy
	}
	c.open++
	c.poolMu.Unlock()
	return redisDialCounted(ctx, c)
}

// redisDialCounted dials for a connection already counted in c.open, and
// uncounts it when the dial fails.
func redisDialCounted(ctx context.Context, c *redisClient) (*redisConn, bool, error) {
	cn, failed, err := redisDial(ctx, c.opts)
	if err != nil {
		c.poolMu.Lock()
		c.open--
		c.poolMu.Unlock()
		return nil, failed, err
	}
	return cn, false, nil
}

// redisStale reports an error that shows a reused connection had been
// closed by the server before this command: nothing of the reply arrived.
// Reset and broken pipe are told by their text: Traefik's interpreter has
// no syscall package to compare errnos with.
func redisStale(err error) bool {
	if err == io.EOF {
		return true
	}
	msg := err.Error()
	return strings.HasSuffix(msg, "connection reset by peer") || strings.HasSuffix(msg, "broken pipe")
}

// redisRelease returns a healthy connection to the pool, or closes it
// when redisMaxIdle are idle already.
func redisRelease(c *redisClient, cn *redisConn) {
	if cap(cn.buf) > redisKeepWrite {
		cn.buf = nil
	}
	cn.reused = true
	c.poolMu.Lock()
	if len(c.idle) < redisMaxIdle {
		c.idle = append(c.idle, cn)
		c.poolMu.Unlock()
		return
	}
	c.open--
	c.poolMu.Unlock()
	cn.nc.Close()
}

// redisClose closes a connection and uncounts it. A connection that saw
// any error is closed, never reused: its stream may be mid-reply.
func redisClose(c *redisClient, cn *redisConn) {
	cn.nc.Close()
	c.poolMu.Lock()
	c.open--
	c.poolMu.Unlock()
}

// redisDial connects, with TLS when configured, and authenticates and
// selects the database, all within the dial timeout (or ctx's deadline).
// failed reports an error that is the server's fault (redisFault).
func redisDial(ctx context.Context, opts redisOptions) (*redisConn, bool, error) {
	deadline, own := redisDeadline(ctx, opts.dialTimeout)
	d := net.Dialer{Deadline: deadline}
	nc, err := d.DialContext(ctx, "tcp", opts.addr)
	if err != nil {
		return nil, redisFault(ctx, err, own), errors.New("redis: connecting: " + err.Error())
	}
	nc.SetDeadline(deadline)
	if opts.tls != nil {
		tc := tls.Client(nc, opts.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, redisFault(ctx, err, own), errors.New("redis: TLS handshake with " + opts.addr + ": " + err.Error())
		}
		nc = tc
	}
	cn := &redisConn{nc: nc, r: bufio.NewReaderSize(nc, redisReadSize)}
	if err := redisHandshake(cn, opts); err != nil {
		nc.Close()
		return nil, redisFault(ctx, err, own), errors.New("redis: connecting: " + err.Error())
	}
	return cn, false, nil
}

// redisHandshake sends AUTH and SELECT, when needed, in one write and
// reads both replies. A refusal is a plain error, not a *redisError: it
// is the connection that cannot be used, not one command.
func redisHandshake(cn *redisConn, opts redisOptions) error {
	n := 0
	if opts.password != "" && opts.username != "" {
		cn.buf = redisAppendCommand(cn.buf, []string{"AUTH", opts.username, opts.password})
		n++
	} else if opts.password != "" {
		cn.buf = redisAppendCommand(cn.buf, []string{"AUTH", opts.password})
		n++
	}
	if opts.db != 0 {
		cn.buf = redisAppendCommand(cn.buf, []string{"SELECT", strconv.Itoa(opts.db)})
		n++
	}
	if n == 0 {
		return nil
	}
	if _, err := cn.nc.Write(cn.buf); err != nil {
		return err
	}
	var refusal error
	for i := 0; i < n; i++ {
		cn.left = redisMaxReply
		reply, err := redisRead(cn, 0)
		if err != nil {
			return err
		}
		if reply.kind == redisErrorReply && refusal == nil {
			step := "SELECT"
			if i == 0 && opts.password != "" {
				step = "AUTH"
			}
			refusal = errors.New(step + " refused: " + newRedisError(step, reply.str).Message)
		}
	}
	return refusal
}

// redisRoundTrip writes one command and reads its reply.
func redisRoundTrip(cn *redisConn, deadline time.Time, args []string) (redisReply, error) {
	if err := cn.nc.SetDeadline(deadline); err != nil {
		return redisReply{}, err
	}
	cn.buf = redisAppendCommand(cn.buf[:0], args)
	if _, err := cn.nc.Write(cn.buf); err != nil {
		return redisReply{}, err
	}
	cn.left = redisMaxReply
	reply, err := redisRead(cn, 0)
	if err == nil && cn.r.Buffered() != 0 {
		// RESP2 without subscriptions never sends what was not asked
		// for: the stream is out of step.
		return redisReply{}, errRedisExtraData
	}
	return reply, err
}

// redisAppendCommand appends args as a RESP array of bulk strings.
func redisAppendCommand(b []byte, args []string) []byte {
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(len(args)), 10)
	b = append(b, '\r', '\n')
	for _, a := range args {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(a)), 10)
		b = append(b, '\r', '\n')
		b = append(b, a...)
		b = append(b, '\r', '\n')
	}
	return b
}

// The protocol errors are values made once: under the interpreter every
// expression of a function costs each call of it a frame slot, taken
// branch or not, and the reader's functions run for every reply element.
var (
	errRedisTooLarge   = errors.New("protocol error: reply larger than 1 MiB")
	errRedisLongLine   = errors.New("protocol error: reply line longer than 4096 bytes")
	errRedisNoCRLF     = errors.New("protocol error: reply line without CRLF")
	errRedisBulkCRLF   = errors.New("protocol error: bulk string without CRLF")
	errRedisBadInteger = errors.New("protocol error: bad integer")
	errRedisBadLength  = errors.New("protocol error: bad length")
	errRedisTooDeep    = errors.New("protocol error: arrays nested too deep")
	errRedisExtraData  = errors.New("protocol error: data after the reply")
)

// redisRead reads one reply, charging what it holds to cn.left.
func redisRead(cn *redisConn, depth int) (redisReply, error) {
	line, err := cn.r.ReadSlice('\n')
	if err != nil {
		return redisReply{}, redisLineError(err, depth, len(line))
	}
	end := len(line) - 2
	if end < 1 || line[end] != '\r' {
		return redisReply{}, errRedisNoCRLF
	}
	cn.left -= len(line)
	if cn.left < 0 {
		return redisReply{}, errRedisTooLarge
	}
	switch line[0] {
	case '$':
		return redisReadBulk(cn, line[1:end])
	case '*':
		return redisReadArray(cn, line[1:end], depth)
	case '+':
		return redisReply{kind: redisSimple, str: string(line[1:end])}, nil
	case '-':
		return redisReply{kind: redisErrorReply, str: string(line[1:end])}, nil
	case ':':
		return redisInteger64(line[1:end])
	}
	return redisReply{}, redisUnknownType(line[0])
}

// redisLineError reports a failed line read. Only the first line of a
// top-level reply may meet a clean io.EOF (a connection the server had
// closed); anywhere else the reply was cut off.
func redisLineError(err error, depth, read int) error {
	if err == bufio.ErrBufferFull {
		return errRedisLongLine
	}
	if err == io.EOF && (depth > 0 || read > 0) {
		return io.ErrUnexpectedEOF
	}
	return err
}

func redisUnknownType(b byte) error {
	return errors.New("protocol error: unknown reply type " + strconv.QuoteRune(rune(b)))
}

func redisInteger64(b []byte) (redisReply, error) {
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return redisReply{}, errRedisBadInteger
	}
	return redisReply{kind: redisInteger, num: n}, nil
}

// redisLength parses a bulk or array length: -1 (null) or more.
func redisLength(b []byte) (int, error) {
	n, err := strconv.Atoi(string(b))
	if err != nil || n < -1 {
		return 0, errRedisBadLength
	}
	return n, nil
}

// redisReadBulk reads a bulk string that fits the reader's buffer, copied
// once from it into the string; redisReadLargeBulk the others.
func redisReadBulk(cn *redisConn, header []byte) (redisReply, error) {
	n, err := redisLength(header)
	if err != nil || n < 0 {
		return redisReply{}, err // n -1: null
	}
	if n > cn.left {
		return redisReply{}, errRedisTooLarge
	}
	cn.left -= n
	if n+2 > redisReadSize {
		return redisReadLargeBulk(cn, n)
	}
	b, err := cn.r.Peek(n + 2)
	if err != nil {
		return redisReply{}, redisCutOff(err)
	}
	if b[n] != '\r' || b[n+1] != '\n' {
		return redisReply{}, errRedisBulkCRLF
	}
	s := string(b[:n])
	cn.r.Discard(n + 2)
	return redisReply{kind: redisBulk, str: s}, nil
}

func redisReadLargeBulk(cn *redisConn, n int) (redisReply, error) {
	b := make([]byte, n+2)
	if _, err := io.ReadFull(cn.r, b); err != nil {
		return redisReply{}, redisCutOff(err)
	}
	if b[n] != '\r' || b[n+1] != '\n' {
		return redisReply{}, errRedisBulkCRLF
	}
	return redisReply{kind: redisBulk, str: string(b[:n])}, nil
}

func redisReadArray(cn *redisConn, header []byte, depth int) (redisReply, error) {
	n, err := redisLength(header)
	if err != nil || n < 0 {
		return redisReply{}, err // n -1: null
	}
	if n > cn.left/redisElemCost {
		return redisReply{}, errRedisTooLarge
	}
	if depth >= redisMaxDepth {
		return redisReply{}, errRedisTooDeep
	}
	cn.left -= n * redisElemCost
	elems := make([]redisReply, n)
	for i := range elems {
		e, err := redisRead(cn, depth+1)
		if err != nil {
			return redisReply{}, err
		}
		elems[i] = e
	}
	return redisReply{kind: redisArray, elems: elems}, nil
}

// redisCutOff reports a reply that ended early.
func redisCutOff(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// The commands the plugin uses, one round trip each. Each error is one
// redisDo returns, or a plain error for a reply of the wrong type.

func redisUnexpected(command string) error {
	return errors.New("redis: " + command + ": unexpected reply type")
}

// redisGet returns key's value; ok is false when the key does not exist.
func redisGet(ctx context.Context, c *redisClient, key string) (value string, ok bool, err error) {
	r, err := redisDo(ctx, c, "GET", key)
	if err != nil {
		return "", false, err
	}
	if r.kind == redisNull {
		return "", false, nil
	}
	if r.kind != redisBulk {
		return "", false, redisUnexpected("GET")
	}
	return r.str, true, nil
}

// redisSet stores value under key for ttl (at least 1 ms, rounded down to
// milliseconds). With nx it only sets a key that does not exist, the way
// to take a lock; set reports whether it was stored.
func redisSet(ctx context.Context, c *redisClient, key, value string, ttl time.Duration, nx bool) (set bool, err error) {
	if ttl < time.Millisecond {
		return false, errors.New("redis: SET: expiry under 1 ms")
	}
	ms := strconv.FormatInt(int64(ttl/time.Millisecond), 10)
	var r redisReply
	if nx {
		r, err = redisDo(ctx, c, "SET", key, value, "PX", ms, "NX")
	} else {
		r, err = redisDo(ctx, c, "SET", key, value, "PX", ms)
	}
	if err != nil {
		return false, err
	}
	if r.kind == redisNull {
		return false, nil
	}
	if r.kind != redisSimple {
		return false, redisUnexpected("SET")
	}
	return true, nil
}

// redisDel deletes keys and returns how many existed.
func redisDel(ctx context.Context, c *redisClient, keys ...string) (int64, error) {
	r, err := redisDo(ctx, c, append([]string{"DEL"}, keys...)...)
	if err != nil {
		return 0, err
	}
	if r.kind != redisInteger {
		return 0, redisUnexpected("DEL")
	}
	return r.num, nil
}

// redisMGet returns one reply per key, in order: redisBulk with the value
// in str, or redisNull for a missing key.
func redisMGet(ctx context.Context, c *redisClient, keys ...string) ([]redisReply, error) {
	r, err := redisDo(ctx, c, append([]string{"MGET"}, keys...)...)
	if err != nil {
		return nil, err
	}
	if r.kind != redisArray || len(r.elems) != len(keys) {
		return nil, redisUnexpected("MGET")
	}
	for i := range r.elems {
		if r.elems[i].kind != redisBulk && r.elems[i].kind != redisNull {
			return nil, redisUnexpected("MGET")
		}
	}
	return r.elems, nil
}

// redisPExpire sets key's time to live (milliseconds); it reports false
// when the key does not exist.
func redisPExpire(ctx context.Context, c *redisClient, key string, ttl time.Duration) (bool, error) {
	r, err := redisDo(ctx, c, "PEXPIRE", key, strconv.FormatInt(int64(ttl/time.Millisecond), 10))
	if err != nil {
		return false, err
	}
	if r.kind != redisInteger {
		return false, redisUnexpected("PEXPIRE")
	}
	return r.num == 1, nil
}

// redisXAdd appends an entry of field, value pairs to the stream key,
// trimming it to about maxLen entries (MAXLEN ~: whole nodes only, cheap),
// and returns the entry's id. Ids are "<unix ms>-<seq>", so a reader that
// starts late can read from a time of its choosing.
func redisXAdd(ctx context.Context, c *redisClient, key string, maxLen int64, fieldValues ...string) (string, error) {
	if len(fieldValues) == 0 || len(fieldValues)%2 != 0 {
		return "", errors.New("redis: XADD: fields and values must come in pairs")
	}
	args := make([]string, 0, 6+len(fieldValues))
	args = append(args, "XADD", key, "MAXLEN", "~", strconv.FormatInt(maxLen, 10), "*")
	r, err := redisDo(ctx, c, append(args, fieldValues...)...)
	if err != nil {
		return "", err
	}
	if r.kind != redisBulk {
		return "", redisUnexpected("XADD")
	}
	return r.str, nil
}

// redisStreamEntry is one stream entry: its id and its field, value pairs.
type redisStreamEntry struct {
	id          string
	fieldValues []string
}

// redisXRead returns up to count entries of stream key after the id
// (exclusive; "0" for the start), without blocking. An empty result means
// nothing new.
func redisXRead(ctx context.Context, c *redisClient, key, after string, count int) ([]redisStreamEntry, error) {
	r, err := redisDo(ctx, c, "XREAD", "COUNT", strconv.Itoa(count), "STREAMS", key, after)
	if err != nil {
		return nil, err
	}
	if r.kind == redisNull {
		return nil, nil
	}
	// [[key, [[id, [field, value, …]], …]]]
	if r.kind != redisArray || len(r.elems) != 1 || r.elems[0].kind != redisArray ||
		len(r.elems[0].elems) != 2 || r.elems[0].elems[1].kind != redisArray {
		return nil, redisUnexpected("XREAD")
	}
	return redisStreamEntries(r.elems[0].elems[1].elems)
}

func redisStreamEntries(items []redisReply) ([]redisStreamEntry, error) {
	entries := make([]redisStreamEntry, len(items))
	for i := range items {
		it := &items[i]
		if it.kind != redisArray || len(it.elems) != 2 || it.elems[0].kind != redisBulk ||
			(it.elems[1].kind != redisArray && it.elems[1].kind != redisNull) {
			return nil, redisUnexpected("XREAD")
		}
		fv := make([]string, len(it.elems[1].elems))
		for j := range fv {
			if it.elems[1].elems[j].kind != redisBulk {
				return nil, redisUnexpected("XREAD")
			}
			fv[j] = it.elems[1].elems[j].str
		}
		entries[i] = redisStreamEntry{id: it.elems[0].str, fieldValues: fv}
	}
	return entries, nil
}

// redisPublish sends message on channel and returns how many subscribers
// received it.
func redisPublish(ctx context.Context, c *redisClient, channel, message string) (int64, error) {
	r, err := redisDo(ctx, c, "PUBLISH", channel, message)
	if err != nil {
		return 0, err
	}
	if r.kind != redisInteger {
		return 0, redisUnexpected("PUBLISH")
	}
	return r.num, nil
}
