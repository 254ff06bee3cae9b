package authsvc

import (
	"errors"
	"strings"

	"github.com/go-json-experiment/json"

	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// DecodeConnectRequest parses the body of POST /v1/connect. An empty body is
// a request without credentials (for backends that read the Authorization
// header). Anything else must be one JSON object with at most "username"
// and "password", each a string, no member twice, valid UTF-8, nothing
// after it: the object a client sends, and nothing looser that two parsers
// might read differently (encoding/json lets the last of two "username"
// members win, and replaces invalid UTF-8 silently).
func DecodeConnectRequest(body []byte) (wire.ConnectRequest, error) {
	var req wire.ConnectRequest
	if len(body) == 0 {
		return req, nil
	}
	if err := json.Unmarshal(body, &req, json.RejectUnknownMembers(true)); err != nil {
		return wire.ConnectRequest{}, errors.New(`request body is not a JSON object {"username":..,"password":..}: ` + cleanJSONError(err))
	}
	return req, nil
}

// cleanJSONError drops the package prefix and never echoes input: an error
// about a password's bytes must not carry them into a log or a response.
func cleanJSONError(err error) string {
	var se *json.SemanticError
	if errors.As(err, &se) && se.JSONPointer != "" {
		return "bad value at " + string(se.JSONPointer)
	}
	msg := err.Error()
	if i := strings.Index(msg, " after offset"); i >= 0 {
		msg = msg[:i]
	}
	if i := strings.Index(msg, "`"); i >= 0 {
		msg = msg[:i] // jsontext quotes offending input between backquotes
	}
	return strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(msg, "json: "), "jsontext: "))
}
