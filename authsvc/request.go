package authsvc

import (
	"errors"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// DecodeConnectRequest parses the body of POST /v1/connect. An empty body is
// a request without credentials (for backends that read the Authorization
// header). Anything else must be one JSON object with at most "username",
// "password" and "reason", each a string, no member twice, valid UTF-8,
// nothing after it, and a reason that is empty or wire.ReasonRebalance: the
// object a client sends, and nothing looser that two parsers might read
// differently (encoding/json lets the last of two "username" members win,
// and replaces invalid UTF-8 silently).
//
// An unknown reason is refused rather than ignored, like an unknown member:
// so auth instances must be upgraded before the clients that send a new
// one (docs/design.md section 15).
//
// The error says what is wrong in words of its own and never quotes the
// body, which may hold a password.
func DecodeConnectRequest(body []byte) (wire.ConnectRequest, error) {
	var req wire.ConnectRequest
	if len(body) == 0 {
		return req, nil
	}
	if err := json.Unmarshal(body, &req, json.RejectUnknownMembers(true)); err != nil {
		return wire.ConnectRequest{}, errors.New(ConnectRequestErrorPrefix + describeJSONError(err))
	}
	if req.Reason != "" && req.Reason != wire.ReasonRebalance {
		return wire.ConnectRequest{}, errors.New(ConnectRequestErrorPrefix + connectRequestReasons[7])
	}
	return req, nil
}

// ConnectRequestErrorPrefix starts every DecodeConnectRequest error.
const ConnectRequestErrorPrefix = `request body is not a JSON object {"username":..,"password":..,"reason":..}: `

// The reasons DecodeConnectRequest gives, after the prefix.
var connectRequestReasons = []string{
	"a member appears twice",
	`unknown member (only "username", "password" and "reason")`,
	"username must be a string",
	"password must be a string",
	"not an object of strings",
	"invalid UTF-8",
	"malformed JSON",
	`reason must be "rebalance" when present`,
}

func describeJSONError(err error) string {
	switch {
	case errors.Is(err, jsontext.ErrDuplicateName):
		return connectRequestReasons[0]
	case errors.Is(err, json.ErrUnknownName):
		return connectRequestReasons[1]
	}
	var sx *jsontext.SyntacticError
	if errors.As(err, &sx) {
		if strings.Contains(sx.Err.Error(), "UTF-8") || strings.Contains(sx.Err.Error(), "surrogate") {
			return connectRequestReasons[5]
		}
		return connectRequestReasons[6]
	}
	var se *json.SemanticError
	if errors.As(err, &se) {
		switch se.JSONPointer {
		case "/username":
			return connectRequestReasons[2]
		case "/password":
			return connectRequestReasons[3]
		case "/reason":
			return connectRequestReasons[4]
		}
		return connectRequestReasons[4]
	}
	return connectRequestReasons[6]
}
