package authkit

// requirements are the per-middleware authorization rules (SPEC.md
// "Authorization requirements"), checked against verified token claims.
type requirements struct {
	permissions   []string // all of them
	roles         []string // any of them, from role or roles
	organizations []string // org_id must be one of them
	entitlements  []string // all of them
	featureFlags  []string // all of them
}

// any reports whether a rule is configured; then every non-public path
// needs a signed-in user even without middlewareAuth.
func (q *requirements) any() bool {
	return len(q.permissions)+len(q.roles)+len(q.organizations)+len(q.entitlements)+len(q.featureFlags) > 0
}

// unmet names the first requirement the claims do not satisfy, or "".
func (q *requirements) unmet(c *tokenClaims) string {
	if !containsAll(c.Permissions, q.permissions) {
		return "permissions"
	}
	if len(q.roles) > 0 && !containsString(q.roles, c.Role) && !containsAny(c.Roles, q.roles) {
		return "roles"
	}
	if len(q.organizations) > 0 && !containsString(q.organizations, c.OrganizationID) {
		return "organization"
	}
	if !containsAll(c.Entitlements, q.entitlements) {
		return "entitlements"
	}
	if !containsAll(c.FeatureFlags, q.featureFlags) {
		return "feature_flags"
	}
	return ""
}

func containsString(list []string, s string) bool {
	if s == "" {
		return false
	}
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !containsString(have, w) {
			return false
		}
	}
	return true
}

func containsAny(have, want []string) bool {
	for _, w := range want {
		if containsString(have, w) {
			return true
		}
	}
	return false
}
