package authsvc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// maxBearerBytes bounds the bearer JWT accepted by the JWKS backend.
const maxBearerBytes = 8 << 10

// jwksLeeway tolerates clock skew between the identity provider and us.
const jwksLeeway = 5 * time.Second

// jwtMethods are the asymmetric algorithms accepted; HMAC is excluded so a
// public JWK can never be used as a shared secret ("alg confusion").
var jwtMethods = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// JWKS authenticates "Authorization: Bearer <jwt>" against the keys of an
// identity provider's JWKS URL, checking signature, iss, aud and exp; the
// user is the token's sub. Keys are refreshed in the background (hourly, and
// at most every 5 minutes when a token names an unknown kid) until the
// context given to NewJWKS ends.
type JWKS struct {
	kf       keyfunc.Keyfunc
	issuer   string
	audience string
}

// NewJWKS fetches jwksURL once (failing if it cannot) and returns the
// backend. issuer and audience are required: without an audience check a
// token minted for another application of the same provider would log in.
func NewJWKS(ctx context.Context, jwksURL, issuer, audience string) (*JWKS, error) {
	return newJWKS(ctx, jwksURL, issuer, audience, nil)
}

func newJWKS(ctx context.Context, jwksURL, issuer, audience string, client *http.Client) (*JWKS, error) {
	if jwksURL == "" {
		return nil, errors.New("jwks: URL is empty")
	}
	if issuer == "" || audience == "" {
		return nil, errors.New("jwks: issuer and audience are required (-jwt-issuer, -jwt-audience)")
	}
	noLazy := false
	kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{jwksURL}, keyfunc.Override{
		Client:                    client,
		HTTPTimeout:               10 * time.Second,
		NoErrorReturnFirstHTTPReq: &noLazy,
	})
	if err != nil {
		return nil, fmt.Errorf("jwks: %s: %w", jwksURL, err)
	}
	return &JWKS{kf: kf, issuer: issuer, audience: audience}, nil
}

// Authenticate implements Authenticator; the JSON body is ignored.
func (j *JWKS) Authenticate(ctx context.Context, r *http.Request, _ wire.ConnectRequest) (string, error) {
	if r == nil {
		return "", ErrInvalidCredentials
	}
	raw, ok := bearer(r)
	if !ok || len(raw) > maxBearerBytes {
		return "", ErrInvalidCredentials
	}
	tok, err := jwt.Parse(raw, j.kf.KeyfuncCtx(ctx),
		jwt.WithValidMethods(jwtMethods),
		jwt.WithIssuer(j.issuer),
		jwt.WithAudience(j.audience),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(jwksLeeway),
	)
	if err != nil || !tok.Valid {
		return "", fmt.Errorf("%w: %v", ErrInvalidCredentials, err)
	}
	sub, err := tok.Claims.GetSubject()
	if err != nil || sub == "" {
		return "", fmt.Errorf("%w: token has no sub", ErrInvalidCredentials)
	}
	return sub, nil
}

// bearer returns the token of an "Authorization: Bearer <token>" header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}
