package authkit

import "strings"

// The identity of a signed-in request: what the plugin learned from a
// verified session, bearer token or API key, in the fields SPEC names for
// identityHeaders. It is built once per credential and shared read-only by
// every request that presents it (the session cache holds it), so it holds
// only what requests need and nothing they could change.

// Identity fields, the values identityHeaders maps header names to.
const (
	fieldUserID = iota
	fieldUserEmail
	fieldUserFirstName
	fieldUserLastName
	fieldUserName
	fieldSessionID
	fieldOrganizationID
	fieldRole
	fieldRoles
	fieldPermissions
	fieldEntitlements
	fieldFeatureFlags
	fieldImpersonatorEmail
	fieldAPIKeyID
	numIdentityFields
)

// identityFieldNames are the field names configuration uses (SPEC
// "What the upstream receives").
var identityFieldNames = map[string]int{
	"user.id":            fieldUserID,
	"user.email":         fieldUserEmail,
	"user.firstName":     fieldUserFirstName,
	"user.lastName":      fieldUserLastName,
	"user.name":          fieldUserName,
	"sessionId":          fieldSessionID,
	"organizationId":     fieldOrganizationID,
	"role":               fieldRole,
	"roles":              fieldRoles,
	"permissions":        fieldPermissions,
	"entitlements":       fieldEntitlements,
	"featureFlags":       fieldFeatureFlags,
	"impersonator.email": fieldImpersonatorEmail,
	"apiKey.id":          fieldAPIKeyID,
}

// principalKind tells how a request signed in. The values are written
// out: under the interpreter, typed constants from "iota + 1" compare
// unequal to themselves.
type principalKind uint8

const (
	signedInBySession     principalKind = 1
	signedInByBearerToken principalKind = 2
	signedInByAPIKey      principalKind = 3
)

// principal is who a signed-in request is: each identity field as the
// header value the upstream receives, "" when empty. Lists are
// comma-joined; a value holding a control character is left out, so it
// can neither reach a header nor satisfy a requirement. A principal is
// shared read-only by every request that presents the credential (the
// session cache holds it, one per cached cookie), so it is kept small:
// its values are one string, the fields joined by a control character
// (which no value holds), where a string per field cost a 16-byte header
// each and an allocation each rounded up to its size class. An ordinary
// session's principal is about 210 bytes instead of 450, so 100 000
// cached sessions hold 24 MB less, twice that in resident memory at Go's
// default GOGC. A request splits the string once, in compiled code (six
// allocations under the interpreter, see harness/cmd/yaegi-cost); slicing
// it by offsets in interpreted code cost two allocations per field.
type principal struct {
	// text holds the fields' values in field order, then the access
	// token when one is kept, each part followed by fieldSeparator but
	// the last. The access token is kept only when a request needs it
	// (forwardAccessToken and eagerAuth): a cached session is otherwise a
	// fifth of its size.
	text string
	// authTime is the token's auth_time in Unix seconds, 0 when absent.
	authTime int64
	kind     principalKind
}

// identityValues are a principal's fields, one string each.
type identityValues [numIdentityFields]string

const (
	// partAccessToken is the principal's part after its fields.
	partAccessToken = numIdentityFields
	// fieldSeparator ends each part of a principal's text: a control
	// character, which setValues keeps out of every part.
	fieldSeparator = "\x00"
)

// principalParts returns a principal's fields, then its access token
// ("" when not kept). A plain function: requests call it, and under the
// interpreter a method call costs several times as much.
func principalParts(p *principal) []string {
	return strings.Split(p.text, fieldSeparator)
}

// fieldValue returns a principal's field f, for callers that need one.
func fieldValue(p *principal, f int) string {
	return principalParts(p)[f]
}

// principalAccessToken returns the access token a principal keeps, or "":
// the last part, found without splitting the rest.
func principalAccessToken(p *principal) string {
	return p.text[strings.LastIndex(p.text, fieldSeparator)+len(fieldSeparator):]
}

// sessionPrincipal is the identity of a verified cookie session. It runs
// on every cache miss, so it fills the values in one function and checks
// them in one call (setValues): under the interpreter a call per field
// cost more than the rest of building the principal.
func sessionPrincipal(c *tokenClaims, sess *session, keepToken bool) *principal {
	p := &principal{kind: signedInBySession}
	var v identityValues
	claimsValues(c, &v)
	v[fieldUserEmail] = sess.userEmail
	v[fieldUserFirstName] = sess.firstName
	v[fieldUserLastName] = sess.lastName
	v[fieldUserName] = strings.TrimSpace(sess.firstName + " " + sess.lastName)
	v[fieldImpersonatorEmail] = sess.impersonatorEmail
	token := ""
	if keepToken {
		token = sess.accessToken
	}
	setValues(p, &v, token)
	if c.AuthTime != nil {
		p.authTime = int64(*c.AuthTime)
	}
	return p
}

// claimsPrincipal is the identity a verified access token carries; a
// bearer token has nothing else.
func claimsPrincipal(c *tokenClaims, kind principalKind) *principal {
	p := &principal{kind: kind}
	var v identityValues
	claimsValues(c, &v)
	setValues(p, &v, "")
	if c.AuthTime != nil {
		p.authTime = int64(*c.AuthTime)
	}
	return p
}

// claimsValues copies the identity fields of an access token's claims.
func claimsValues(c *tokenClaims, v *identityValues) {
	v[fieldUserID] = c.Subject
	v[fieldSessionID] = c.SessionID
	v[fieldOrganizationID] = c.OrganizationID
	v[fieldRole] = c.Role
	v[fieldRoles] = joinClaim(c.Roles)
	v[fieldPermissions] = joinClaim(c.Permissions)
	v[fieldEntitlements] = joinClaim(c.Entitlements)
	v[fieldFeatureFlags] = joinClaim(c.FeatureFlags)
}

// setValues sets a principal's fields from v, leaving out those unfit
// for a header, and the access token it keeps ("" for none). The values
// are joined once and checked by two calls (a NUL inside a value shows as
// one separator too many), and one by one only when those find a control
// character.
func setValues(p *principal, v *identityValues, accessToken string) {
	text := strings.Join(v[:], fieldSeparator)
	if strings.Count(text, fieldSeparator) != numIdentityFields-1 || strings.ContainsAny(text, controlCharactersButNUL) {
		for i := 0; i < numIdentityFields; i++ {
			v[i] = headerSafe(v[i])
		}
		text = strings.Join(v[:], fieldSeparator)
	}
	p.text = text + fieldSeparator + headerSafe(accessToken)
}

// joinClaim comma-joins a multi-valued claim. An item unfit for a header
// is left out; setValues checks a lone item with the other values.
func joinClaim(values []string) string {
	joined := strings.Join(values, ",") // "" for none, the item for one
	if len(values) > 1 && strings.ContainsAny(joined, controlCharacters) {
		return joinSafeItems(values)
	}
	return joined
}

// joinSafeItems is joinClaim for a list with an item unfit for a header.
func joinSafeItems(values []string) string {
	kept := make([]string, 0, len(values))
	for _, item := range values {
		if headerSafe(item) != "" {
			kept = append(kept, item)
		}
	}
	return strings.Join(kept, ",")
}

// headerSafe returns v, or "" when it holds a control character: Go's
// HTTP client refuses such a header value, so forwarding it would break
// the request. UTF-8 passes as it is. (ContainsAny with an ASCII set runs
// compiled; a per-rune callback would run interpreted.)
func headerSafe(v string) string {
	if strings.ContainsAny(v, controlCharacters) {
		return ""
	}
	return v
}

const controlCharacters = "\x00" + controlCharactersButNUL

const controlCharactersButNUL = "\x01\x02\x03\x04\x05\x06\x07\x08\t\n\x0b\x0c\r\x0e\x0f" +
	"\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x7f"

// hasListItem reports whether a comma-joined claim list holds item.
func hasListItem(list, item string) bool {
	if item == "" {
		return false
	}
	for list != "" {
		i := strings.IndexByte(list, ',')
		if i < 0 {
			return list == item
		}
		if list[:i] == item {
			return true
		}
		list = list[i+1:]
	}
	return false
}

// principalCost approximates the bytes a cached principal holds: the
// struct, and its strings rounded up to the allocator's size classes
// (TestSessionCacheCostIsHonest compares it with the heap).
func principalCost(p *principal) int {
	return principalSize + stringRounding + len(p.text)
}

const (
	// principalSize is the struct, rounded up to its size class.
	principalSize = 32
	// stringRounding is what a string's allocation adds to its length on
	// average (size classes).
	stringRounding = 8
)
