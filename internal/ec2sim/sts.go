package ec2sim

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

var stsActions = map[string]bool{"GetCallerIdentity": true, "AssumeRole": true}

var roleArnRe = regexp.MustCompile(`^arn:aws[a-z-]*:iam::(\d{12}):role/(?:[\w+=,.@-]+/)*([\w+=,.@-]{1,64})$`)
var sessionNameRe = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)

// AssumedRole records one successful AssumeRole call, for provider tests of assume_role.
type AssumedRole struct {
	RoleArn, SessionName, ExternalID, AccessKeyID string
	Duration                                      time.Duration

	roleID, account, sessionArn string
}

type stsIdentity struct {
	UserID  string `xml:"UserId"`
	Account string `xml:"Account"`
	Arn     string `xml:"Arn"`
}

type stsCredentials struct {
	AccessKeyID     string `xml:"AccessKeyId"`
	SecretAccessKey string `xml:"SecretAccessKey"`
	SessionToken    string `xml:"SessionToken"`
	Expiration      string `xml:"Expiration"`
}

type stsAssumeRoleResult struct {
	Credentials     stsCredentials `xml:"Credentials"`
	AssumedRoleUser struct {
		AssumedRoleID string `xml:"AssumedRoleId"`
		Arn           string `xml:"Arn"`
	} `xml:"AssumedRoleUser"`
	PackedPolicySize int `xml:"PackedPolicySize"`
}

// AssumedRoles returns every successful AssumeRole call, oldest first.
func (s *Server) AssumedRoles() []AssumedRole {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]AssumedRole(nil), s.assumed...)
}

func (s *Server) handleSTS(action string, p params, keyID string) (any, error) {
	switch action {
	case "GetCallerIdentity":
		// Requests signed with AssumeRole credentials are that role's session, as in AWS.
		for _, ar := range s.assumed {
			if ar.AccessKeyID == keyID && keyID != "" {
				return &stsIdentity{UserID: ar.roleID + ":" + ar.SessionName, Account: ar.account, Arn: ar.sessionArn}, nil
			}
		}
		return &stsIdentity{UserID: "AIDAEC2SIMEXAMPLE0001", Account: s.cfg.AccountID, Arn: "arn:aws:iam::" + s.cfg.AccountID + ":user/ec2sim"}, nil
	case "AssumeRole":
		return s.assumeRole(p)
	case "":
		return nil, errorf(codeMissingParameter, "The request must contain the parameter Action")
	}
	return nil, errorf(codeInvalidAction, "Could not find operation %s for version %s", action, stsVersion)
}

func (s *Server) assumeRole(p params) (any, error) {
	arn, session := p.str("RoleArn"), p.str("RoleSessionName")
	if arn == "" || session == "" {
		return nil, errorf(codeValidationError, "RoleArn and RoleSessionName are required")
	}
	m := roleArnRe.FindStringSubmatch(arn)
	if m == nil {
		return nil, errorf(codeValidationError, "%s is invalid", arn)
	}
	if !sessionNameRe.MatchString(session) {
		return nil, errorf(codeValidationError, "1 validation error detected: Value '%s' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*", session)
	}
	secs, err := p.integer("DurationSeconds", 3600)
	if err != nil {
		return nil, errorf(codeValidationError, "DurationSeconds must be an integer")
	}
	if secs < 900 || secs > 43200 {
		return nil, errorf(codeValidationError, "1 validation error detected: Value '%d' at 'durationSeconds' failed to satisfy constraint: Member must have value between 900 and 43200", secs)
	}
	if ext := p.str("ExternalId"); ext != "" && (len(ext) < 2 || len(ext) > 1224) {
		return nil, errorf(codeValidationError, "ExternalId must be 2 to 1224 characters")
	}
	dur := time.Duration(secs) * time.Second
	r := &stsAssumeRoleResult{}
	r.Credentials = stsCredentials{
		AccessKeyID:     "ASIA" + strings.ToUpper(fmt.Sprintf("%016x", s.idRand.Uint64())),
		SecretAccessKey: fmt.Sprintf("ec2sim%016x%016x", s.idRand.Uint64(), s.idRand.Uint64()),
		SessionToken:    fmt.Sprintf("ec2sim-session-%016x%016x", s.idRand.Uint64(), s.idRand.Uint64()),
		Expiration:      time.Now().UTC().Add(dur).Format(time.RFC3339),
	}
	roleID := "AROA" + strings.ToUpper(fmt.Sprintf("%016x", s.idRand.Uint64()))
	r.AssumedRoleUser.AssumedRoleID = roleID + ":" + session
	r.AssumedRoleUser.Arn = "arn:aws:sts::" + m[1] + ":assumed-role/" + m[2] + "/" + session
	s.assumed = append(s.assumed, AssumedRole{RoleArn: arn, SessionName: session, ExternalID: p.str("ExternalId"),
		AccessKeyID: r.Credentials.AccessKeyID, Duration: dur, roleID: roleID, account: m[1], sessionArn: r.AssumedRoleUser.Arn})
	return r, nil
}
