package authkit

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Path patterns follow path-to-regexp v6.3 as authkit-nextjs configures it
// (sensitive=false, strict=false, end=true): ":name" matches one segment,
// "(re)" a custom expression, "?", "*" and "+" make the preceding parameter or
// "{...}" group optional or repeated, the match is case-insensitive, covers
// the whole path, and tolerates one trailing delimiter.
//
// Go's regexp package (RE2) lacks the lookarounds, backreferences and some of
// the escapes that path-to-regexp and JavaScript rely on. Patterns are
// translated to equivalent RE2 expressions, and the few that have no
// equivalent are rejected when the configuration loads instead of matching
// differently at request time.
//
// Matching runs on every request inside Traefik's interpreter (yaegi
// v0.16.1), where the cost is in the calls, not in the matching: a call into
// the standard library costs about a microsecond whatever it does, and a
// call to a plugin function more, with allocations for every local of the
// callee. Comparing strings in plugin code therefore loses to one compiled
// regexp even for a literal pattern, and a list of patterns is matched with
// one regexp holding them all.

// pathPatternDelimiters are the characters a default parameter never spans,
// and one of which may trail a matching path.
const pathPatternDelimiters = "/#?"

// pathPatternJSSpace and pathPatternJSNonSpace are, as character class
// ranges, what JavaScript's "\s" and "\S" match; RE2's "\s" is only ASCII
// white space without "\v".
const (
	pathPatternJSSpace    = `\t-\r \x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}\x{feff}`
	pathPatternJSNonSpace = `\x00-\x08\x0e-\x1f!-\x{9f}\x{a1}-\x{167f}\x{1681}-\x{1fff}\x{200b}-\x{2027}` +
		`\x{202a}-\x{202e}\x{2030}-\x{205e}\x{2060}-\x{2fff}\x{3001}-\x{fefe}\x{ff00}-\x{10ffff}`
)

// pathPattern is one compiled path pattern.
type pathPattern struct {
	// body is the pattern as an RE2 expression without the anchors, the
	// case-insensitivity flag and the optional trailing delimiter, which
	// pathPatternExpression adds, so that several patterns can share them.
	body string
	re   *regexp.Regexp
}

// match reports whether path, a URL path without query or fragment, matches
// the pattern.
func (p *pathPattern) match(path string) bool {
	return p.re.MatchString(path)
}

// pathPatterns is a list of patterns, such as middlewareAuth's
// unauthenticatedPaths, that a path matches if it matches any of them.
// compilePathPatterns joins every pattern of the list into one regexp, so it
// holds one element, or none for an empty list.
type pathPatterns []*regexp.Regexp

// compilePathPatterns compiles every pattern of list into one matcher.
// Entries are trimmed of surrounding white space, as the URL parser
// authkit-nextjs passes patterns through does, and empty entries, which
// comma-separated configuration produces, are skipped.
func compilePathPatterns(list []string) (pathPatterns, error) {
	var bodies []string
	for _, source := range list {
		source = strings.TrimSpace(source)
		if source == "" {
			continue
		}
		p, err := compilePathPattern(source)
		if err != nil {
			return nil, err
		}
		bodies = append(bodies, p.body)
	}
	if len(bodies) == 0 {
		return nil, nil
	}
	re, err := regexp.Compile(pathPatternExpression(strings.Join(bodies, "|")))
	if err != nil {
		return nil, fmt.Errorf("path patterns %q: %w", list, err)
	}
	return pathPatterns{re}, nil
}

// matchAny reports whether path, a URL path without query or fragment,
// matches at least one of the patterns. The path is taken as it is: a
// pattern such as "/public/:rest*" matches "/public/../admin", so dot
// segments must be resolved before a match can make a path public.
func (ps pathPatterns) matchAny(path string) bool {
	for i := 0; i < len(ps); i++ {
		if ps[i].MatchString(path) {
			return true
		}
	}
	return false
}

// compilePathPattern compiles a path-to-regexp v6 pattern. The error names
// the pattern and what is wrong with it.
func compilePathPattern(source string) (*pathPattern, error) {
	p, err := buildPathPattern(source)
	if err != nil {
		return nil, fmt.Errorf("path pattern %q: %w", source, err)
	}
	return p, nil
}

func buildPathPattern(source string) (*pathPattern, error) {
	if !utf8.ValidString(source) {
		return nil, errors.New("not valid UTF-8")
	}
	lexemes, err := lexPathPattern(source)
	if err != nil {
		return nil, err
	}
	parser := pathPatternParser{source: source, lexemes: lexemes}
	tokens, err := parser.parse()
	if err != nil {
		return nil, err
	}
	body, err := pathPatternBody(tokens)
	if err != nil {
		return nil, err
	}
	re, err := regexp.Compile(pathPatternExpression(body))
	if err != nil {
		return nil, err
	}
	return &pathPattern{body: body, re: re}, nil
}

// pathPatternExpression completes alternatives, pattern bodies separated by
// "|", as path-to-regexp's defaults demand: case-insensitive, anchored at
// both ends, with one optional trailing delimiter.
func pathPatternExpression(alternatives string) string {
	return `(?i)^(?:` + alternatives + `)[/#?]?$`
}

// pathPatternLexKind is the kind of a lexeme, as path-to-regexp's lexer
// distinguishes them.
type pathPatternLexKind int

const (
	pathPatternLexChar     pathPatternLexKind = iota // any other character
	pathPatternLexEscaped                            // "\x": x taken literally
	pathPatternLexName                               // ":name"
	pathPatternLexPattern                            // "(re)"
	pathPatternLexModifier                           // "?", "*" or "+"
	pathPatternLexOpen                               // "{"
	pathPatternLexClose                              // "}"
	pathPatternLexEnd                                // end of the pattern
)

type pathPatternLexeme struct {
	kind  pathPatternLexKind
	index int    // byte offset in the pattern, for error messages
	value string // the character, name or expression
}

// lexPathPattern splits a pattern into lexemes.
func lexPathPattern(source string) ([]pathPatternLexeme, error) {
	var lexemes []pathPatternLexeme
	i := 0
	for i < len(source) {
		c := source[i]
		switch c {
		case '*', '+', '?':
			lexemes = append(lexemes, pathPatternLexeme{pathPatternLexModifier, i, source[i : i+1]})
			i++
		case '{':
			lexemes = append(lexemes, pathPatternLexeme{pathPatternLexOpen, i, "{"})
			i++
		case '}':
			lexemes = append(lexemes, pathPatternLexeme{pathPatternLexClose, i, "}"})
			i++
		case '\\':
			if i+1 == len(source) {
				return nil, fmt.Errorf("nothing to escape after %q at %d", `\`, i)
			}
			_, size := utf8.DecodeRuneInString(source[i+1:])
			lexemes = append(lexemes, pathPatternLexeme{pathPatternLexEscaped, i, source[i+1 : i+1+size]})
			i += 1 + size
		case ':':
			j := i + 1
			for j < len(source) && isPathPatternNameByte(source[j]) {
				j++
			}
			if j == i+1 {
				return nil, fmt.Errorf("missing parameter name after %q at %d", ":", i)
			}
			lexemes = append(lexemes, pathPatternLexeme{pathPatternLexName, i, source[i+1 : j]})
			i = j
		case '(':
			end, err := pathPatternGroupEnd(source, i)
			if err != nil {
				return nil, err
			}
			lexemes = append(lexemes, pathPatternLexeme{pathPatternLexPattern, i, source[i+1 : end]})
			i = end + 1
		default:
			lexemes = append(lexemes, pathPatternLexeme{pathPatternLexChar, i, source[i : i+1]})
			i++
		}
	}
	return append(lexemes, pathPatternLexeme{pathPatternLexEnd, i, ""}), nil
}

func isPathPatternNameByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '_'
}

// pathPatternGroupEnd returns the index of the ")" closing the custom
// expression that opens at start. Like path-to-regexp, it counts parentheses
// without regard to character classes, and allows only groups starting "(?"
// inside, so that the pattern's own capture groups stay one per parameter.
func pathPatternGroupEnd(source string, start int) (int, error) {
	if start+1 < len(source) && source[start+1] == '?' {
		return 0, fmt.Errorf("custom pattern cannot start with %q at %d", "?", start+1)
	}
	depth := 1
	for j := start + 1; j < len(source); j++ {
		switch source[j] {
		case '\\':
			j++
		case ')':
			depth--
			if depth == 0 {
				if j == start+1 {
					return 0, fmt.Errorf("missing custom pattern in %q at %d", "()", start)
				}
				return j, nil
			}
		case '(':
			depth++
			if j+1 == len(source) || source[j+1] != '?' {
				return 0, fmt.Errorf("capturing groups are not allowed in a custom pattern at %d; use %q", j, "(?:")
			}
		}
	}
	return 0, fmt.Errorf("unbalanced %q at %d", "(", start)
}

// pathPatternToken is a piece of a parsed pattern: literal text, or a key (a
// parameter or a "{...}" group) with what surrounds it.
type pathPatternToken struct {
	text   string // the literal text of a token that is not a key
	isKey  bool
	name   string // the parameter's name, or its position among unnamed ones
	prefix string // literal text before the value, repeated with it
	suffix string // literal text after the value, repeated with it
	// param reports whether the key matches a value, as opposed to a group
	// holding only text.
	param bool
	// custom is the JavaScript expression of "(re)"; empty for the default
	// one-segment value.
	custom string
	// exclude is a character the default value may not contain: the text
	// before the parameter, when it is a single character that is not a
	// delimiter (the "-" in "/:a-:b").
	exclude  string
	modifier string // "", "?", "*" or "+"
}

// pathPatternParser turns lexemes into tokens as path-to-regexp's parse does:
// a "/" or "." right before a parameter becomes its prefix, so that "/:id?"
// makes the slash optional along with the value.
type pathPatternParser struct {
	source  string
	lexemes []pathPatternLexeme
	pos     int
	tokens  []pathPatternToken
	text    string // literal text not yet added to tokens
	unnamed int
}

func (p *pathPatternParser) take(kind pathPatternLexKind) (string, bool) {
	if p.pos < len(p.lexemes) && p.lexemes[p.pos].kind == kind {
		p.pos++
		return p.lexemes[p.pos-1].value, true
	}
	return "", false
}

func (p *pathPatternParser) takeText() string {
	text := ""
	for {
		if v, ok := p.take(pathPatternLexChar); ok {
			text += v
		} else if v, ok := p.take(pathPatternLexEscaped); ok {
			text += v
		} else {
			return text
		}
	}
}

// unexpected reports the lexeme at the current position, which is not the
// expected one.
func (p *pathPatternParser) unexpected(expected string) error {
	l := p.lexemes[p.pos]
	if l.kind == pathPatternLexEnd {
		return fmt.Errorf("unexpected end of pattern, expected %s", expected)
	}
	found := p.source[l.index:p.lexemes[p.pos+1].index]
	if l.kind == pathPatternLexModifier {
		return fmt.Errorf("unexpected %q at %d, expected %s (%q may only follow a parameter or a group; write %q to match the character)",
			found, l.index, expected, found, `\`+found)
	}
	return fmt.Errorf("unexpected %q at %d, expected %s", found, l.index, expected)
}

func (p *pathPatternParser) nextUnnamed() string {
	name := strconv.Itoa(p.unnamed)
	p.unnamed++
	return name
}

// flushText adds the pending literal text to the tokens.
func (p *pathPatternParser) flushText() {
	if p.text != "" {
		p.tokens = append(p.tokens, pathPatternToken{text: p.text})
		p.text = ""
	}
}

func (p *pathPatternParser) parse() ([]pathPatternToken, error) {
	for p.pos < len(p.lexemes) {
		char, hasChar := p.take(pathPatternLexChar)
		name, hasName := p.take(pathPatternLexName)
		custom, hasCustom := p.take(pathPatternLexPattern)
		if hasName || hasCustom {
			prefix := char
			if prefix != "/" && prefix != "." {
				p.text += prefix
				prefix = ""
			}
			p.flushText()
			key := pathPatternToken{isKey: true, name: name, prefix: prefix, param: true, custom: custom}
			if err := p.addKey(key, !hasName, !hasCustom); err != nil {
				return nil, err
			}
			continue
		}
		if hasChar {
			p.text += char
			continue
		}
		if v, ok := p.take(pathPatternLexEscaped); ok {
			p.text += v
			continue
		}
		p.flushText()
		open := p.pos
		if _, ok := p.take(pathPatternLexOpen); ok {
			key := pathPatternToken{isKey: true, prefix: p.takeText()}
			name, hasName := p.take(pathPatternLexName)
			custom, hasCustom := p.take(pathPatternLexPattern)
			key.suffix = p.takeText()
			if _, ok := p.take(pathPatternLexClose); !ok {
				return nil, p.unexpected(fmt.Sprintf("%q closing the %q at %d", "}", "{", p.lexemes[open].index))
			}
			key.param = hasName || hasCustom
			key.name = name
			key.custom = custom
			if err := p.addKey(key, hasCustom && !hasName, hasName && !hasCustom); err != nil {
				return nil, err
			}
			continue
		}
		if _, ok := p.take(pathPatternLexEnd); !ok {
			return nil, p.unexpected("end of pattern")
		}
	}
	return p.tokens, nil
}

// addKey completes a key token and appends it: an unnamed parameter gets
// the next index as its name, a parameter without a custom pattern
// excludes the delimiters that end it, and a trailing modifier applies.
func (p *pathPatternParser) addKey(key pathPatternToken, unnamed, defaultPattern bool) error {
	if unnamed {
		key.name = p.nextUnnamed()
	}
	if defaultPattern {
		exclude, err := p.defaultExclusion(key.prefix)
		if err != nil {
			return err
		}
		key.exclude = exclude
	}
	key.modifier, _ = p.take(pathPatternLexModifier)
	p.tokens = append(p.tokens, key)
	return nil
}

// defaultExclusion applies path-to-regexp v6.3's guard against catastrophic
// backtracking: a default parameter may not contain the text before it
// unless that text holds a delimiter, so "/:a-:b" gives b no "-". The guard
// is a lookahead, which RE2 lacks; for a single character it is simply that
// character left out of the parameter's class, and longer texts are refused.
func (p *pathPatternParser) defaultExclusion(prefix string) (string, error) {
	before := prefix
	if before == "" && len(p.tokens) > 0 {
		prev := p.tokens[len(p.tokens)-1]
		if prev.isKey {
			return "", fmt.Errorf("must have text between two parameters, missing text after %q", prev.name)
		}
		before = prev.text
	}
	if before == "" || strings.ContainsAny(before, pathPatternDelimiters) {
		return "", nil
	}
	if utf8.RuneCountInString(before) == 1 {
		return before, nil
	}
	return "", fmt.Errorf("a parameter after %q, text without %q, %q or %q, needs a lookahead that Go's regexp lacks; "+
		"separate the parameters with \"/\" or a single character", before, "/", "#", "?")
}

// pathPatternBody builds the RE2 equivalent of the JavaScript expression
// path-to-regexp builds from the tokens, without what pathPatternExpression adds.
// It has no capture groups, which matching does not need, so that the bodies
// of several patterns can be joined into one expression.
func pathPatternBody(tokens []pathPatternToken) (string, error) {
	var b strings.Builder
	groupNames := map[string]bool{}
	for i := 0; i < len(tokens); i++ {
		t := tokens[i]
		if !t.isKey {
			b.WriteString(regexp.QuoteMeta(t.text))
			continue
		}
		prefix, suffix := regexp.QuoteMeta(t.prefix), regexp.QuoteMeta(t.suffix)
		repeated := t.modifier == "*" || t.modifier == "+"
		if !t.param {
			b.WriteString("(?:" + prefix + suffix + ")" + t.modifier)
			continue
		}
		value := `[^/#?` + pathPatternClassChar(t.exclude) + `]+`
		if t.custom != "" {
			translated, err := translatePathPatternCustom(t.custom, groupNames)
			if err == nil {
				// Compiled alone so that a syntax error names the custom
				// pattern rather than the whole expression.
				value = "(?:" + translated + ")"
				_, err = regexp.Compile(value)
			}
			if err != nil {
				return "", fmt.Errorf("custom pattern %q: %w", t.custom, err)
			}
		}
		switch {
		case prefix == "" && suffix == "":
			if repeated {
				return "", fmt.Errorf("cannot repeat %q without a prefix and suffix", t.name)
			}
			b.WriteString("(?:" + value + ")" + t.modifier)
		case repeated:
			b.WriteString("(?:" + prefix + value + "(?:" + suffix + prefix + value + ")*" + suffix + ")")
			if t.modifier == "*" {
				b.WriteString("?")
			}
		default:
			b.WriteString("(?:" + prefix + value + suffix + ")" + t.modifier)
		}
	}
	return b.String(), nil
}

// pathPatternClassChar writes c for use inside a bracketed character class.
func pathPatternClassChar(c string) string {
	if len(c) == 1 && !isPathPatternNameByte(c[0]) {
		return `\` + c
	}
	return c
}

// translatePathPatternCustom rewrites a custom expression from JavaScript's
// RegExp syntax (without the "u" flag) to RE2 syntax with the same meaning:
// JavaScript reads an unknown escape such as "\a" or "\p" as the letter
// itself, writes code points as "\uXXXX", lets "." stop at "\r" too, and has
// empty classes "[]" and "[^]", while RE2 gives several of these other
// meanings or rejects them. Lookarounds and backreferences, which RE2 cannot
// express, are refused with a reason. Named groups become non-capturing;
// groupNames holds the names already used in the pattern, which JavaScript
// refuses to repeat.
func translatePathPatternCustom(src string, groupNames map[string]bool) (string, error) {
	var b strings.Builder
	inClass := false
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case c == '\\':
			// The lexer pairs every backslash with the character after it.
			i++
			e := src[i]
			switch {
			case e >= '1' && e <= '9' || e == 'k':
				return "", fmt.Errorf("backreference %s is not supported by Go's regexp", src[i-1:i+1])
			case e == 'b' && inClass:
				b.WriteString(`\x08`)
			case e == 'B' && inClass:
				b.WriteByte('B')
			case e == 's' || e == 'S':
				ranges := pathPatternJSSpace
				if e == 'S' {
					ranges = pathPatternJSNonSpace
				}
				if inClass {
					b.WriteString(ranges)
				} else {
					b.WriteString("[" + ranges + "]")
				}
			case e == 'b' || e == 'B':
				if err := pathPatternAssertion(src, i+1); err != nil {
					return "", err
				}
				b.WriteString(src[i-1 : i+1])
			case strings.IndexByte("dDwWfnrtv0", e) >= 0:
				b.WriteString(src[i-1 : i+1])
			case e == 'x' && isPathPatternHex(src, i+1, 2):
				b.WriteString(src[i-1 : i+3])
				i += 2
			case e == 'u' && isPathPatternHex(src, i+1, 4):
				b.WriteString(`\x{` + src[i+1:i+5] + `}`)
				i += 4
			case e == 'c':
				if i+1 == len(src) || !(src[i+1] >= 'a' && src[i+1] <= 'z' || src[i+1] >= 'A' && src[i+1] <= 'Z') {
					return "", errors.New(`escape \c without a letter is not supported`)
				}
				fmt.Fprintf(&b, `\x%02x`, src[i+1]%32)
				i++
			case isPathPatternNameByte(e) || e >= utf8.RuneSelf:
				// An identity escape: the character itself. Letters and
				// digits need no escaping in RE2, and a multi-byte
				// character's remaining bytes follow unchanged.
				b.WriteByte(e)
			default:
				b.WriteString(src[i-1 : i+1])
			}
		case inClass:
			switch c {
			case '[':
				// Literal in JavaScript; RE2 would read "[:alpha:]".
				b.WriteString(`\[`)
			case ']':
				inClass = false
				b.WriteByte(c)
			default:
				b.WriteByte(c)
			}
		case c == '[':
			rest := src[i+1:]
			switch {
			case strings.HasPrefix(rest, "]"):
				b.WriteString(`[^\x00-\x{10FFFF}]`)
				i++
			case strings.HasPrefix(rest, "^]"):
				b.WriteString(`[\x00-\x{10FFFF}]`)
				i += 2
			default:
				inClass = true
				b.WriteByte(c)
				if strings.HasPrefix(rest, "^") {
					b.WriteByte('^')
					i++
				}
			}
		case c == '^' || c == '$':
			if err := pathPatternAssertion(src, i+1); err != nil {
				return "", err
			}
			b.WriteByte(c)
		case c == '.':
			b.WriteString(`[^\n\r\x{2028}\x{2029}]`)
		case c == '(' && strings.HasPrefix(src[i+1:], "?"):
			rest := src[i+2:]
			switch {
			case strings.HasPrefix(rest, ":"):
				b.WriteString("(?:")
				i += 2
			case strings.HasPrefix(rest, "=") || strings.HasPrefix(rest, "!"):
				return "", errors.New("lookahead is not supported by Go's regexp")
			case strings.HasPrefix(rest, "<=") || strings.HasPrefix(rest, "<!"):
				return "", errors.New("lookbehind is not supported by Go's regexp")
			case strings.HasPrefix(rest, "<"):
				name := pathPatternGroupName.FindString(rest)
				if name == "" {
					return "", fmt.Errorf("invalid group name at %q", "(?"+rest)
				}
				if groupNames[name] {
					return "", fmt.Errorf("duplicate group name %q", name[1:len(name)-1])
				}
				groupNames[name] = true
				b.WriteString("(?:")
				i += 1 + len(name)
			default:
				return "", fmt.Errorf("invalid group %q", src[i:i+2])
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// pathPatternAssertion rejects a quantifier at next, which follows an
// assertion such as "$": JavaScript refuses to repeat an assertion, RE2
// accepts it.
func pathPatternAssertion(src string, next int) error {
	rest := src[next:]
	if rest != "" && strings.IndexByte("*+?", rest[0]) >= 0 || pathPatternQuantifier.MatchString(rest) {
		return fmt.Errorf("nothing to repeat before %q", rest[:1])
	}
	return nil
}

// pathPatternGroupName matches the "<name>" of a named group, in the ASCII
// subset of the identifiers JavaScript accepts.
var pathPatternGroupName = regexp.MustCompile(`^<[A-Za-z_$][A-Za-z0-9_$]*>`)

// pathPatternQuantifier matches a counted quantifier such as "{2,}"; in
// JavaScript a "{" that does not start one is a literal.
var pathPatternQuantifier = regexp.MustCompile(`^\{[0-9]+(,[0-9]*)?\}`)

// isPathPatternHex reports whether src has n hexadecimal digits at start.
func isPathPatternHex(src string, start, n int) bool {
	if start+n > len(src) {
		return false
	}
	for i := start; i < start+n; i++ {
		c := src[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}
