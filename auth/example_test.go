package auth_test

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/signalbox-io/signalbox/auth"
)

// The access key of a connection string, used as written.
const accessKey = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFG="

// A function app answers negotiate with the client URL and a token whose audience
// names the hub on the service endpoint (without the port).
func ExampleNewToken() {
	endpoint := "http://localhost:8888"
	token, err := auth.NewToken(accessKey, auth.TokenOptions{
		Audience: auth.ClientAudience(endpoint, "Chat"),
		UserID:   "ada",
		Claims:   []auth.Claim{{Type: "role", Value: "admin"}},
		Lifetime: 30 * time.Minute,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("url:", auth.ClientURL(endpoint, "Chat"))
	fmt.Println("token minted:", token != "")
	// Output:
	// url: http://localhost:8888/client/?hub=chat
	// token minted: true
}

func ExampleValidator_ValidateClient() {
	token, _ := auth.NewToken(accessKey, auth.TokenOptions{
		Audience: auth.ClientAudience("https://signalbox.example", "chat"),
		UserID:   "ada",
		Claims:   []auth.Claim{{Type: "role", Value: "admin"}, {Type: "role", Value: "dev"}},
	})
	// Primary and secondary key: a token signed with either is accepted.
	v := &auth.Validator{Keys: []string{"new-primary-key", accessKey}}

	p, err := v.ValidateClient(token, "Chat")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("user:", p.UserID)
	for _, c := range auth.UserClaims(p.Claims) {
		fmt.Printf("%s=%s\n", c.Type, c.Value)
	}

	_, err = v.ValidateClient(token, "other")
	fmt.Println("other hub refused:", errors.Is(err, auth.ErrAudience))
	// Output:
	// user: ada
	// role=admin
	// role=dev
	// other hub refused: true
}

func ExampleValidator_ValidateREST() {
	endpoint := "http://localhost:8888"
	token, _ := auth.NewToken(accessKey, auth.TokenOptions{
		Audience: auth.RESTAudience(endpoint, "/api/hubs/chat/:send?api-version=2022-06-01"),
	})
	v := &auth.Validator{Keys: []string{accessKey}}

	_, err := v.ValidateREST(token, "/api/hubs/chat/:send")
	fmt.Println("send to chat:", err == nil)
	_, err = v.ValidateREST(token, "/api/hubs/other/:send")
	fmt.Println("send to other:", err)
	// Output:
	// send to chat: true
	// send to other: auth: REST token: invalid token audience
}

func ExampleTokenFromRequest() {
	// Browsers put the token in the query of WebSocket and SSE requests.
	r := httptest.NewRequest("GET", "/client/?hub=chat&id=abc&access_token=from-query", nil)
	fmt.Println(auth.TokenFromRequest(r))

	// Other clients send a header, which wins over the query.
	r.Header.Set("Authorization", "Bearer from-header")
	fmt.Println(auth.TokenFromRequest(r))
	// Output:
	// from-query
	// from-header
}

func ExampleUpstreamSignature() {
	// The service signs the connection id with every key it has ...
	keys := []string{accessKey, "secondary-key"}
	header := auth.UpstreamSignature(keys, "conn-1")
	fmt.Println(header)

	// ... so a function app that knows only one of them accepts the request.
	fmt.Println(auth.VerifyUpstreamSignature(header, []string{"secondary-key"}, "conn-1"))
	fmt.Println(auth.VerifyUpstreamSignature(header, []string{"some-other-key"}, "conn-1"))
	// Output:
	// sha256=A5AEC173B09D67A01A6C64EFB697A16115B5844785758E428011017EB4245CE5,sha256=83E4539B4B54046F82358A2756701BF60B3F82A33D9F8284084FA3584667651F
	// true
	// false
}

func ExampleUserClaims() {
	all := []auth.Claim{
		{Type: "aud", Value: "https://signalbox.example/client/?hub=chat"},
		{Type: "exp", Value: "1767323045"},
		{Type: "asrs.s.uid", Value: "ada"},
		{Type: "role", Value: "admin"},
		{Type: "asrs.u.aud", Value: "the user's own aud claim"},
	}
	for _, c := range auth.UserClaims(all) {
		fmt.Printf("%s=%s\n", c.Type, c.Value)
	}
	// Output:
	// role=admin
	// aud=the user's own aud claim
}

func ExampleClientAudience() {
	fmt.Println(auth.ClientAudience("https://foo.service.signalr.net", "Chat"))
	fmt.Println(auth.ClientAudience("http://localhost:8888/", "chat"))
	fmt.Println(auth.RESTAudience("http://localhost:8888", "/api/hubs/chat/:send?api-version=2022-06-01"))
	// Output:
	// https://foo.service.signalr.net/client/?hub=chat
	// http://localhost/client/?hub=chat
	// http://localhost/api/hubs/chat/:send?api-version=2022-06-01
}
