package httpapi

import (
	"crypto/sha256"
	"encoding/base64"
	"io/fs"
	"testing"
)

// The embedded assets are byte for byte the files gqlgen's playground pins
// on the CDN (its subresource-integrity hashes, gqlgen v0.17.95).
func TestPlaygroundAssetsArePinned(t *testing.T) {
	for name, want := range map[string]string{
		graphiqlJS:  "hnImuor1znlJkD/FOTL3jayfS/xsyNoP04abi8bFJWs=",
		graphiqlCSS: "MEh+B2NdMSpj9kexQNN3QKc8UzMrCXW/Sx/phcpuyIU=",
		reactJS:     "S0lp+k7zWUMk2ixteM6HZvu8L9Eh//OVrt+ZfbCpmgY=",
		reactDOMJS:  "IXWO0ITNDjfnNXIu5POVfqlgYoop36bDzhodR6LW5Pc=",
	} {
		b, err := fs.ReadFile(playgroundFiles, "playground/"+name)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		if got := base64.StdEncoding.EncodeToString(sum[:]); got != want {
			t.Errorf("%s: sha256 %s; want %s", name, got, want)
		}
	}
}
