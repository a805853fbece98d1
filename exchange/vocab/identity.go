package vocab

import (
	"fmt"
	"net/url"
	"strings"
)

// Role is what a credential may do.
type Role string

const (
	RoleAdmin   Role = "admin"   // the hub operator
	RoleOfficer Role = "officer" // a department's data officer
	RoleSystem  Role = "system"  // a department system: provider, consumer, integrator
)

// ParseRole checks s.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleAdmin, RoleOfficer, RoleSystem:
		return r, nil
	}
	return "", Invalid("role", "%q is not one of admin, officer, system", s)
}

// Identity is who acts: the certificate's URI SAN,
// spiffe://xhub/dept/<dept>/<role>/<name>.
type Identity struct {
	Dept DeptID
	Role Role
	Name string
}

// URI is the SPIFFE form.
func (id Identity) URI() string {
	return fmt.Sprintf("spiffe://xhub/dept/%s/%s/%s", id.Dept, id.Role, id.Name)
}

func (id Identity) String() string { return id.URI() }

// ParseIdentity parses and checks the SPIFFE form.
func ParseIdentity(s string) (Identity, error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "spiffe" || u.Host != "xhub" {
		return Identity{}, Invalid("identity", "%q is not spiffe://xhub/dept/<dept>/<role>/<name>", s)
	}
	parts := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
	if len(parts) != 4 || parts[0] != "dept" {
		return Identity{}, Invalid("identity", "%q is not spiffe://xhub/dept/<dept>/<role>/<name>", s)
	}
	dept, err := ParseDeptID(parts[1])
	if err != nil {
		return Identity{}, err
	}
	role, err := ParseRole(parts[2])
	if err != nil {
		return Identity{}, err
	}
	if err := ValidateCredName(parts[3]); err != nil {
		return Identity{}, err
	}
	if (role == RoleAdmin) != (dept == HubDept) {
		return Identity{}, Invalid("identity", "%q: role admin belongs to department %q only", s, HubDept)
	}
	return Identity{Dept: dept, Role: role, Name: parts[3]}, nil
}

// ValidateCredName checks a credential name: [a-z0-9][a-z0-9._-]{0,63}.
func ValidateCredName(s string) error {
	if len(s) == 0 || len(s) > 64 {
		return Invalid("name", "%q must be 1 to 64 characters", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && (c == '.' || c == '_' || c == '-')
		if !ok {
			return Invalid("name", "%q may contain only a-z, 0-9, '.', '_', '-' (not first)", s)
		}
	}
	return nil
}
