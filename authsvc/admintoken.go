package authsvc

import "errors"

// SetAdminToken replaces the bearer token of GET /v1/nodes, for a reload
// (SIGHUP) after the token was changed where it is kept. Requests already
// checked are not affected. An empty token is refused: a reload that read
// nothing must not open or close the endpoint.
func (s *Server) SetAdminToken(tok string) error {
	if tok == "" {
		return errors.New("authsvc: empty admin token")
	}
	s.admin.Store(&tok)
	return nil
}

// adminToken is the token in force ("" = endpoint disabled).
func (s *Server) adminToken() string { return *s.admin.Load() }
