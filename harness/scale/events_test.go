package scale

import (
	"encoding/json"
	"strings"
	"time"
)

// cacheEvent is the plugin's session_cache debug event: one JSON line on
// standard error, at most once a minute, whose inserts are the cache fills
// (misses of valid sessions) since the previous event.
//
//	{"level":"DEBUG","msg":"session_cache","plugin":"traefik-authkit",…,
//	 "entries":N,"bytes":B,"inserts":I,"evictions":E,"expired":X}
type cacheEvent struct {
	Time      time.Time `json:"time"`
	Msg       string    `json:"msg"`
	Entries   int64     `json:"entries"`
	Bytes     int64     `json:"bytes"`
	Inserts   int64     `json:"inserts"`
	Evictions int64     `json:"evictions"`
	Expired   int64     `json:"expired"`

	arrived time.Time
	// since is the previous event's time (or Traefik's start): the
	// interval the counters cover.
	since time.Time
}

// pluginLine is the part of any plugin event the harness reads.
type pluginLine struct {
	Msg    string `json:"msg"`
	Plugin string `json:"plugin"`
}

// onTraefikLine is the plugin Traefik's output handler: it counts the
// plugin's lines by msg, keeps session_cache events and a few of
// Traefik's own lines.
func (tl *timeline) onTraefikLine(at time.Time, line string) {
	i := strings.IndexByte(line, '{')
	if i < 0 || !strings.Contains(line, `"plugin":"traefik-authkit"`) {
		tl.mu.Lock()
		tl.nOthers++
		if len(tl.others) < 20 {
			tl.others = append(tl.others, line)
		}
		tl.mu.Unlock()
		return
	}
	raw := line[i:]
	var pl pluginLine
	if json.NewDecoder(strings.NewReader(raw)).Decode(&pl) != nil {
		return
	}
	var ev cacheEvent
	isCache := pl.Msg == "session_cache" && json.NewDecoder(strings.NewReader(raw)).Decode(&ev) == nil
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.plugins[pl.Msg]++
	if !isCache {
		return
	}
	ev.arrived = at
	if ev.Time.IsZero() {
		ev.Time = at
	}
	ev.since = tl.t0
	if n := len(tl.events); n > 0 {
		ev.since = tl.events[n-1].Time
	}
	tl.events = append(tl.events, ev)
}

// cacheEvents returns the events so far.
func (tl *timeline) cacheEvents() []cacheEvent {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return append([]cacheEvent(nil), tl.events...)
}

// hitRate is 1 − inserts ÷ signed-in requests over the events' intervals;
// ok is false when there are no events or no signed-in requests.
func (tl *timeline) hitRate(events []cacheEvent) (rate float64, inserts, signedIn int64, ok bool) {
	for _, ev := range events {
		inserts += ev.Inserts
		signedIn += tl.sumBetween(ev.since, ev.Time, mSignedInAll)
	}
	if len(events) == 0 || signedIn == 0 {
		return 0, inserts, signedIn, false
	}
	return 1 - float64(inserts)/float64(signedIn), inserts, signedIn, true
}
