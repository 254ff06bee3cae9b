package node

import "errors"

// SetAdminToken replaces the bearer token of POST /admin/drain, for a
// reload (SIGHUP) after the token was changed where it is kept. An empty
// token is refused: a reload that read nothing must not open or close the
// endpoint.
func (n *Node) SetAdminToken(tok string) error {
	if tok == "" {
		return errors.New("node: empty admin token")
	}
	n.admin.Store(&tok)
	return nil
}

// adminToken is the token in force ("" = endpoint disabled).
func (n *Node) adminToken() string { return *n.admin.Load() }
