package identity

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

// Paths served by a Provider.
const (
	TokenPath     = "/msi/token"
	DiscoveryPath = "/.well-known/openid-configuration"
	JWKSPath      = "/.well-known/jwks.json"
)

// MSIAPIVersion is the App Service managed identity protocol version served.
const MSIAPIVersion = "2019-08-01"

// DefaultTokenLifetime is how long a token from the Provider is valid.
const DefaultTokenLifetime = time.Hour

// ProviderOptions configures a Provider; the zero value means defaults.
type ProviderOptions struct {
	// Algorithm is RS256 (default, what Microsoft Entra uses) or ES256.
	Algorithm string
	// TokenLifetime defaults to DefaultTokenLifetime.
	TokenLifetime time.Duration
	// Now replaces time.Now (tests).
	Now func() time.Time
	// Logger nil discards.
	Logger *slog.Logger
}

// Provider is a local managed identity: it mints tokens for the identity a caller asks
// for (the system-assigned one, or a user-assigned one by client_id) and publishes the
// issuer documents that let a verifier check them. It is safe for concurrent use.
type Provider struct {
	issuer   string
	header   string
	alg      string
	key      crypto.Signer
	kid      string
	lifetime time.Duration
	now      func() time.Time
	log      *slog.Logger
}

// NewProvider makes a provider for issuer (its base URL, as clients reach it) that
// requires header as the X-IDENTITY-HEADER secret. A new signing key is generated.
func NewProvider(issuer, header string, opts *ProviderOptions) (*Provider, error) {
	if opts == nil {
		opts = &ProviderOptions{}
	}
	if header == "" {
		return nil, fmt.Errorf("identity: provider: the identity header must not be empty")
	}
	p := &Provider{
		issuer:   strings.TrimRight(issuer, "/"),
		header:   header,
		alg:      opts.Algorithm,
		lifetime: opts.TokenLifetime,
		now:      opts.Now,
		log:      opts.Logger,
	}
	if p.alg == "" {
		p.alg = "RS256"
	}
	if p.lifetime <= 0 {
		p.lifetime = DefaultTokenLifetime
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	var err error
	switch p.alg {
	case "RS256":
		p.key, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ES256":
		p.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return nil, fmt.Errorf("identity: provider: algorithm %q is not RS256 or ES256", p.alg)
	}
	if err != nil {
		return nil, fmt.Errorf("identity: provider: generating the signing key: %w", err)
	}
	// The kid names the key, as Entra's do; a new process has a new key, so a verifier
	// sees an unknown kid and refreshes its JWKS.
	var kidRaw [8]byte
	_, _ = rand.Read(kidRaw[:])
	p.kid = hex.EncodeToString(kidRaw[:])
	return p, nil
}

// Issuer returns the issuer URL (no trailing slash).
func (p *Provider) Issuer() string { return p.issuer }

// Identity is who a token speaks for.
type Identity struct {
	// ObjectID is the oid claim: the identity's service principal object id.
	ObjectID string
	// ClientID is the appid (and azp) claim: the identity's application (client) id.
	ClientID string
	// TenantID is the tid claim.
	TenantID string
}

// SystemAssigned is the identity a Provider gives a caller that names none.
func SystemAssigned() Identity { return UserAssigned("") }

// UserAssigned returns the identity of the user-assigned managed identity clientID; ""
// means the system-assigned one. The ids are the same in every process, so an
// allow-list written once keeps working: the client id is clientID itself, the object
// id a UUID derived from it.
func UserAssigned(clientID string) Identity {
	id := Identity{ObjectID: stableUUID("object", clientID), ClientID: clientID, TenantID: stableUUID("tenant", "")}
	if clientID == "" {
		id.ClientID = stableUUID("client", "")
	}
	return id
}

// stableUUID derives a version-4-shaped UUID from a name, so ids look like Entra's.
func stableUUID(kind, name string) string {
	sum := sha256.Sum256([]byte("signalbox-identity/" + kind + "/" + name))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// Token mints an access token for id with the audience resource; it returns the token
// and its expiry.
func (p *Provider) Token(id Identity, resource string) (string, time.Time, error) {
	now := p.now()
	exp := now.Add(p.lifetime)
	method := jwt.GetSigningMethod(p.alg)
	claims := jwt.MapClaims{
		"iss":   p.issuer,
		"aud":   resource,
		"sub":   id.ObjectID,
		"oid":   id.ObjectID,
		"appid": id.ClientID,
		"azp":   id.ClientID,
		"tid":   id.TenantID,
		"idtyp": "app",
		"ver":   "1.0",
		"iat":   now.Unix(),
		"nbf":   now.Unix(),
		"exp":   exp.Unix(),
	}
	t := jwt.NewWithClaims(method, claims)
	t.Header["kid"] = p.kid
	s, err := t.SignedString(p.key)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("identity: signing a token: %w", err)
	}
	return s, exp, nil
}

// Handler serves the token endpoint, the discovery document and the JWKS.
func (p *Provider) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+TokenPath, p.serveToken)
	mux.HandleFunc("GET "+DiscoveryPath, p.serveDiscovery)
	mux.HandleFunc("GET "+JWKSPath, p.serveJWKS)
	return mux
}

// tokenResponse is the App Service managed identity answer (api-version 2019-08-01).
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	ExpiresOn   string `json:"expires_on"`
	Resource    string `json:"resource"`
	TokenType   string `json:"token_type"`
	ClientID    string `json:"client_id"`
}

func (p *Provider) serveToken(w http.ResponseWriter, r *http.Request) {
	got := r.Header.Get("X-IDENTITY-HEADER")
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(p.header)) != 1 {
		msiError(w, http.StatusUnauthorized, "invalid_request", "The X-IDENTITY-HEADER header is missing or wrong.")
		return
	}
	q := r.URL.Query()
	if v := q.Get("api-version"); v != MSIAPIVersion {
		msiError(w, http.StatusBadRequest, "invalid_request", "api-version must be "+MSIAPIVersion+".")
		return
	}
	resource := q.Get("resource")
	if resource == "" {
		// A scope names the resource with "/.default" after it.
		resource = strings.TrimSuffix(q.Get("scope"), "/.default")
	}
	if resource == "" {
		msiError(w, http.StatusBadRequest, "invalid_request", "resource (or scope) is required.")
		return
	}
	// A user-assigned identity is chosen by client id; by object id or resource id it
	// gets an identity of its own derived from that value.
	var id Identity
	switch {
	case q.Get("client_id") != "":
		id = UserAssigned(q.Get("client_id"))
	case q.Get("object_id") != "", q.Get("principal_id") != "":
		v := q.Get("object_id") + q.Get("principal_id")
		id = UserAssigned("object:" + v)
		id.ObjectID = v
	case q.Get("mi_res_id") != "":
		id = UserAssigned("resource:" + q.Get("mi_res_id"))
	default:
		id = SystemAssigned()
	}
	tok, exp, err := p.Token(id, resource)
	if err != nil {
		p.log.Error("identity: minting a token failed", "error", err)
		msiError(w, http.StatusInternalServerError, "server_error", "Could not sign the token.")
		return
	}
	p.log.Info("identity: token issued", "objectId", id.ObjectID, "clientId", id.ClientID, "resource", resource)
	writeJSON(w, http.StatusOK, tokenResponse{
		AccessToken: tok,
		ExpiresOn:   strconv.FormatInt(exp.Unix(), 10),
		Resource:    resource,
		TokenType:   "Bearer",
		ClientID:    id.ClientID,
	})
}

func (p *Provider) serveDiscovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                p.issuer,
		"jwks_uri":                              p.issuer + JWKSPath,
		"token_endpoint":                        p.issuer + TokenPath,
		"id_token_signing_alg_values_supported": []string{p.alg},
		"response_types_supported":              []string{"token"},
		"subject_types_supported":               []string{"public"},
	})
}

func (p *Provider) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	jwk := jose.JSONWebKey{Key: p.key.Public(), KeyID: p.kid, Algorithm: p.alg, Use: "sig"}
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk}})
}

func msiError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encoding failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
