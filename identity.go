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

// principal is who a signed-in request is. Lists are comma-joined as the
// upstream receives them; a value holding a control character is empty,
// so it can neither reach a header nor satisfy a requirement.
type principal struct {
	kind   principalKind
	fields [numIdentityFields]string
	// authTime is the token's auth_time in Unix seconds, 0 when absent.
	authTime int64
	// accessToken is kept only when a request needs it (forwardAccessToken
	// and eagerAuth): a cached session is otherwise about a fifth of it.
	accessToken string
}

// sessionPrincipal is the identity of a verified cookie session.
func sessionPrincipal(c *tokenClaims, sess *session, keepToken bool) *principal {
	p := claimsPrincipal(c, signedInBySession)
	p.fields[fieldUserEmail] = headerSafe(sess.userEmail)
	p.fields[fieldUserFirstName] = headerSafe(sess.firstName)
	p.fields[fieldUserLastName] = headerSafe(sess.lastName)
	p.fields[fieldUserName] = headerSafe(strings.TrimSpace(sess.firstName + " " + sess.lastName))
	p.fields[fieldImpersonatorEmail] = headerSafe(sess.impersonatorEmail)
	if keepToken {
		p.accessToken = sess.accessToken
	}
	return p
}

// claimsPrincipal is the identity a verified access token carries; a
// bearer token has nothing else.
func claimsPrincipal(c *tokenClaims, kind principalKind) *principal {
	p := &principal{kind: kind}
	p.fields[fieldUserID] = headerSafe(c.Subject)
	p.fields[fieldSessionID] = headerSafe(c.SessionID)
	p.fields[fieldOrganizationID] = headerSafe(c.OrganizationID)
	p.fields[fieldRole] = headerSafe(c.Role)
	p.fields[fieldRoles] = joinClaim(c.Roles)
	p.fields[fieldPermissions] = joinClaim(c.Permissions)
	p.fields[fieldEntitlements] = joinClaim(c.Entitlements)
	p.fields[fieldFeatureFlags] = joinClaim(c.FeatureFlags)
	if c.AuthTime != nil {
		p.authTime = int64(*c.AuthTime)
	}
	return p
}

// joinClaim comma-joins a multi-valued claim, leaving out values that are
// empty or unfit for a header.
func joinClaim(values []string) string {
	if len(values) == 1 {
		return headerSafe(values[0])
	}
	kept := make([]string, 0, len(values))
	for _, v := range values {
		if v = headerSafe(v); v != "" {
			kept = append(kept, v)
		}
	}
	return strings.Join(kept, ",")
}

// headerSafe returns v, or "" when it holds a control character: Go's
// HTTP client refuses such a header value, so forwarding it would break
// the request. UTF-8 passes as it is. (IndexAny with an ASCII set runs
// compiled; a per-rune callback would run interpreted.)
func headerSafe(v string) string {
	if strings.IndexAny(v, controlCharacters) >= 0 {
		return ""
	}
	return v
}

const controlCharacters = "\x00\x01\x02\x03\x04\x05\x06\x07\x08\t\n\x0b\x0c\r\x0e\x0f" +
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
	n := principalSize + len(p.accessToken)
	for i := 0; i < numIdentityFields; i++ {
		if len(p.fields[i]) > 0 {
			n += len(p.fields[i]) + stringRounding
		}
	}
	return n
}

const (
	// principalSize is the struct: the field array and a few words.
	principalSize = 16*numIdentityFields + 32
	// stringRounding is what a short string's allocation adds on average.
	stringRounding = 8
)
