package auth

import (
	_ "embed"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Limits on user input, checked by ValidateUsername and friends.
const (
	MinUsernameLen    = 3  // characters
	MaxUsernameLen    = 64 // characters
	MinPasswordLen    = 8  // characters
	MaxPasswordBytes  = 72 // bcrypt's limit; longer is refused, never truncated
	maxEmailLen       = 254
	maxFullNameLen    = 200 // characters
	maxUserAgentBytes = 512
)

// usernameTooLong reports whether username has more than MaxUsernameLen
// characters, looking at no more of it than that takes.
func usernameTooLong(username string) bool {
	return len(username) > MaxUsernameLen*utf8.UTFMax || utf8.RuneCountInString(username) > MaxUsernameLen
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// UsernameKey is the form of a username that uniqueness and login compare:
// NFKC, full case folding, NFKC again (Unicode's NFKC_Casefold, less its
// removal of default-ignorable code points, which ValidateUsername refuses),
// so that "Alice", "ALICE" and the fullwidth "ａｌｉｃｅ" are one user, and so
// are "Straße" and "STRASSE". It is idempotent: the key of a key is the key
// itself, so a stored key that is not its own UsernameKey is one that no
// login can reach.
func UsernameKey(username string) string {
	// A Caser may hold state, so each call gets its own.
	folded := cases.Fold().String(norm.NFKC.String(username))
	// x/text folds upper case Cherokee to lower case and lower case to upper
	// (golang/go#46101); CaseFolding.txt folds both to the upper case letters,
	// which were encoded first.
	folded = strings.Map(foldCherokee, folded)
	return norm.NFKC.String(folded)
}

// foldCherokee maps a lower case Cherokee letter to its upper case letter.
func foldCherokee(r rune) rune {
	if (r >= 0xAB70 && r <= 0xABBF) || (r >= 0x13F8 && r <= 0x13FD) {
		return unicode.ToUpper(r)
	}
	return r
}

// ValidateUsername checks the username rules:
//
//   - 3 to 64 characters of valid UTF-8 (more than 64*4 bytes is refused
//     before anything else is looked at);
//   - no spaces, control, formatting or other default-ignorable characters,
//     blank fillers (U+3164, U+2800, ...), unassigned or private-use
//     characters, in the name or in the compatibility form of any of its
//     characters;
//   - letters of one script, or of Latin with Han and Hiragana/Katakana,
//     Hangul or Bopomofo (UTS #39 section 5.2, "Highly Restrictive");
//     digits and punctuation common to all scripts are fine;
//   - no combining mark left on a Latin, Greek or Cyrillic letter, or on a
//     character that is no letter, once the name is case-folded and
//     composed (what "ALİCE" turns into), and no more than 4 marks in a row
//     or the same mark twice in a row (UTS #39 section 5.4);
//   - no name in another script all of whose letters look like Latin letters
//     or digits ("аlice" is refused as mixed, "сосо" as such a look-alike),
//     and no Latin letter that only looks like a plain one (small capitals,
//     IPA ɡ, long ſ).
//
// It returns a CodeInvalidRequest error on field "username".
func ValidateUsername(username string) error {
	if len(username) > MaxUsernameLen*utf8.UTFMax || len(username) < MinUsernameLen {
		return errUsernameLength()
	}
	if !utf8.ValidString(username) {
		return fieldError("username", "username must be valid UTF-8")
	}
	if n := utf8.RuneCountInString(username); n < MinUsernameLen || n > MaxUsernameLen {
		return errUsernameLength()
	}
	for _, r := range username {
		if what := usernameRuneProblem(r); what != "" {
			return fieldError("username", "username must not contain %s (%U)", what, r)
		}
		if compat := norm.NFKD.String(string(r)); compat != string(r) {
			for _, c := range compat {
				if what := usernameRuneProblem(c); what != "" {
					return fieldError("username", "username must not contain %s (%U stands for %U)", what, r, c)
				}
			}
		}
		if strings.ContainsRune(latinLookalikes, r) {
			return fieldError("username", "username must not contain letters that only look like plain Latin ones (%U)", r)
		}
	}
	if err := checkUsernameScripts(norm.NFKC.String(username)); err != nil {
		return err
	}
	return checkUsernameMarks(UsernameKey(username))
}

func errUsernameLength() error {
	return fieldError("username", "username must be %d to %d characters", MinUsernameLen, MaxUsernameLen)
}

// usernameRuneProblem names the kind of character r is when a username may
// not contain it, or returns "".
func usernameRuneProblem(r rune) string {
	switch {
	case unicode.IsSpace(r):
		return "spaces"
	case unicode.IsControl(r):
		return "control characters"
	case strings.ContainsRune(usernameBlanks, r):
		return "blank or filler characters"
	case unicode.In(r, unicode.Cf, unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector):
		return "invisible formatting characters"
	case !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S):
		// Left: unassigned, private-use and surrogate code points. Refusing
		// unassigned ones also keeps every key stable when a later Unicode
		// version assigns them case or compatibility mappings.
		return "unassigned or private-use characters"
	}
	return ""
}

// usernameBlanks are visible-width characters that draw nothing: the Hangul
// fillers (U+115F, U+1160, U+3164, U+FFA0), BRAILLE PATTERN BLANK, MUSICAL
// SYMBOL NULL NOTEHEAD and OBJECT REPLACEMENT CHARACTER.
const usernameBlanks = "\u115F\u1160\u3164\uFFA0\u2800\U0001D159\uFFFC"

// checkUsernameScripts checks the scripts of the letters of nfkc, a
// username in NFKC: one script or an allowed combination, and not one whose
// letters all look like Latin letters or digits.
func checkUsernameScripts(nfkc string) error {
	var scripts []string
	lookalike, letters := true, 0
	for _, r := range nfkc {
		script := scriptOf(r)
		if script == "Common" || script == "Inherited" {
			continue
		}
		if !slices.Contains(scripts, script) {
			scripts = append(scripts, script)
		}
		if unicode.IsLetter(r) {
			letters++
			// The letter without its accents: Cyrillic ё looks like Latin ë.
			base, _ := utf8.DecodeRuneInString(norm.NFD.String(string(r)))
			lookalike = lookalike && strings.ContainsRune(latinConfusables, base)
		}
	}
	if !scriptsMix(scripts) {
		names := make([]string, len(scripts))
		for i, s := range scripts {
			names[i] = strings.ReplaceAll(s, "_", " ")
		}
		return fieldError("username", "username mixes letters of the %s scripts; use one script", strings.Join(names, ", "))
	}
	if len(scripts) == 1 && scripts[0] != "Latin" && letters > 0 && lookalike {
		return fieldError("username", "username is written in %s letters that all look like Latin letters or digits, so it could pass for a Latin name",
			strings.ReplaceAll(scripts[0], "_", " "))
	}
	return nil
}

// scriptsMix reports whether a username may mix scripts: one script, or the
// sets UTS #39 section 5.2 allows at its Highly Restrictive level.
func scriptsMix(scripts []string) bool {
	if len(scripts) <= 1 {
		return true
	}
	for _, allowed := range [][]string{
		{"Latin", "Han", "Hiragana", "Katakana"},
		{"Latin", "Han", "Bopomofo"},
		{"Latin", "Han", "Hangul"},
	} {
		if !slices.ContainsFunc(scripts, func(s string) bool { return !slices.Contains(allowed, s) }) {
			return true
		}
	}
	return false
}

// scriptOf returns the name of the Unicode script of r, as in
// unicode.Scripts ("Common" for digits and punctuation shared by all).
func scriptOf(r rune) string {
	switch {
	case r < utf8.RuneSelf:
		if unicode.IsLetter(r) {
			return "Latin"
		}
		return "Common"
	case unicode.Is(unicode.Latin, r):
		return "Latin"
	case unicode.Is(unicode.Common, r):
		return "Common"
	case unicode.Is(unicode.Inherited, r):
		return "Inherited"
	}
	for name, table := range unicode.Scripts {
		if unicode.Is(table, r) {
			return name
		}
	}
	return "Unknown"
}

// checkUsernameMarks checks the combining marks of key, a case-folded and
// composed username: none on a Latin, Greek or Cyrillic letter (after NFC
// such a mark stands for no letter of those alphabets, as with the i + U+0307
// of a folded "İ"), none on a character that is no letter, at most 4 in a row
// and never the same twice in a row.
func checkUsernameMarks(key string) error {
	base := rune(-1)
	var prev rune
	run := 0
	for _, r := range key {
		if !unicode.Is(unicode.Mn, r) && !unicode.Is(unicode.Me, r) {
			if !unicode.Is(unicode.Mc, r) {
				base = r
			}
			run, prev = 0, 0
			continue
		}
		if base < 0 || !unicode.IsLetter(base) {
			return fieldError("username", "username must not put a combining mark (%U) on a character that is no letter", r)
		}
		if s := scriptOf(base); s == "Latin" || s == "Greek" || s == "Cyrillic" {
			return fieldError("username", "username must not contain a combining mark (%U) on a %s letter, even after case folding; use the letter with the accent built in", r, s)
		}
		if run++; run > 4 || r == prev {
			return fieldError("username", "username must not stack combining marks (%U)", r)
		}
		prev = r
	}
	return nil
}

// latinConfusables are the letters of scripts other than Latin and Common
// whose prototype in Unicode's confusables.txt (UTS #39, version 14.0.0) is
// one ASCII letter or digit, less those that NFKC changes. A name made only
// of these (and Common characters) looks like a Latin name.
const latinConfusables = "" +
	"ЅІЈАВЕЗКМНОРСТУХЬабгеорсухѕіјѡѴѵҮүһҽӀӏӠԁԌԛԜԝꙄꙇ" + // Cyrillic
	"ͿΑΒΕΖΗΙΚΜΝΟΡΤΥΧαγινορσυϜϳϺᴦ" + // Greek
	"ϨⲅⲎⲒⲔⲘⲚⲞⲟⲢⲣⲤⲥⲦⲨⲬⳊⳌⳐⳒ" + // Coptic
	"ՍՏՕագզհոռսցքօ" + // Armenian
	"ᎠᎡᎢᎥᎩᎪᎫᎬᎳᎷᎻᎽᏀᏂᏃᏎᏏᏒᏔᏕᏙᏚᏞᏟᏢᏦᏧᏮᏳᏴꭵꮁꮃꮓꮩꮪꮯ" + // Cherokee
	"ꓐꓑꓒꓓꓔꓖꓗꓙꓚꓜꓝꓟꓠꓡꓢꓣꓦꓧꓪꓫꓬꓮꓰꓲꓳꓴ" + // Lisu
	"ᐯᑌᑭᑯᑲᒍᒪᒿᕁᕼᕽᖇᖯᖴᗅᗞᗪᗰᗷ" + // Canadian Aboriginal
	"اهھہە" + "וטןס" + // Arabic, Hebrew
	"ሀዐ" + "ყჿ" + "ഠ" + "ဝ" + "ߊ" + "ଠ" + "ꛟ" + // Ethiopic, Georgian, Malayalam, Myanmar, N'Ko, Oriya, Bamum
	"ᚷᛁᛕᛖ" + "ⴸⴹⵏⵔⵕⵝ" + // Runic, Tifinagh
	"𐐄𐐕𐐛𐐠𐐬𐐽𐑈" + "𐒴𐓂𐓎𐓒𐓪𐓶" + // Deseret, Osage
	"𐊠𐊡𐊢𐊥𐊫𐊰𐊱𐊲𐊴𐋏" + "𐊂𐊆𐊇𐊊𐊐𐊒𐊕𐊖𐊗" + "𐌁𐌂𐌉𐌑𐌕𐌗𐌚" + "𐔓𐔖𐔘𐔜𐔝𐔥𐔦𐔧" + // Carian, Lycian, Old Italic, Elbasan
	"𑜆𑜊𑜎𑜏" + "𑢠𑢢𑢣𑢤𑢦𑢩𑢬𑢮𑢯𑢲𑢵𑢸𑢻𑢼𑣀𑣁𑣂𑣃𑣄𑣆𑣈𑣊𑣌𑣕𑣖𑣗𑣘𑣜" + "𖼈𖼊𖼖𖼨𖼵𖼺𖼻𖽀𖽂𖽃" // Ahom, Warang Citi, Miao

// latinLookalikes are the Latin letters that confusables.txt (14.0.0) gives
// an ASCII letter or digit as prototype, that NFKC leaves alone and that no
// living orthography needs: small capitals, IPA and phonetic letters,
// medieval and Zhuang tone letters. The long s is here too: NFKC makes it
// "s", but it looks like "f". Kept, because languages are written with them:
// ı (Turkish), ɩ Ɩ ʋ ɣ ɑ ɯ (West African alphabets), Ʒ (Sami), ǀ (Khoekhoe).
const latinLookalikes = "ſƄƍƦƧƼƽȜȢȣɡɪʏᴄᴏᴑᴜᴠᴡᴢᶃᶌẝỿꜱꝚꝪꝮꞘꞙꞟꞫꞲꞳꞴꬲꬵꬽꭇꭈꭎꭒꭚ"

// ValidatePassword checks the password rules: at least 8 characters, at
// most 72 bytes (bcrypt's limit), and not one of the most common passwords,
// without regard to case. It returns a CodeInvalidRequest error on field.
func ValidatePassword(field, password string) error {
	if !utf8.ValidString(password) {
		return fieldError(field, "password must be valid UTF-8")
	}
	if utf8.RuneCountInString(password) < MinPasswordLen {
		return fieldError(field, "password must be at least %d characters", MinPasswordLen)
	}
	if len(password) > MaxPasswordBytes {
		return fieldError(field, "password must be at most %d bytes (bcrypt's limit); it is %d", MaxPasswordBytes, len(password))
	}
	if _, common := commonPasswords()[strings.ToLower(password)]; common {
		return fieldError(field, "password is one of the %d most common passwords; choose another", len(commonPasswords()))
	}
	return nil
}

//go:embed common-passwords.txt
var commonPasswordsText string

// commonPasswords is the set of lower-cased passwords in
// common-passwords.txt, built on first use.
var commonPasswords = sync.OnceValue(func() map[string]struct{} {
	set := make(map[string]struct{}, 10000)
	for line := range strings.Lines(commonPasswordsText) {
		line = strings.TrimSuffix(line, "\n")
		if line != "" && !strings.HasPrefix(line, "#") {
			set[line] = struct{}{}
		}
	}
	return set
})

// validateProfile checks the optional signup fields.
func validateProfile(email, fullName string) error {
	if email != "" {
		addr, err := mail.ParseAddress(email)
		if err != nil || addr.Address != email || len(email) > maxEmailLen {
			return fieldError("email", "email must be a plain address such as name@example.com")
		}
	}
	if fullName != "" {
		if !utf8.ValidString(fullName) || utf8.RuneCountInString(fullName) > maxFullNameLen {
			return fieldError("fullName", "fullName must be at most %d characters of UTF-8", maxFullNameLen)
		}
		if strings.IndexFunc(fullName, unicode.IsControl) >= 0 {
			return fieldError("fullName", "fullName must not contain control characters")
		}
	}
	return nil
}

// MaxScopes bounds the scopes granted to a user or allowed to a client; all
// of them together, space-separated, fit in a scope parameter
// (maxScopeLen).
const MaxScopes = 64

// validateScopes checks scopes granted to a user or allowed to a client:
// RFC 6749 scope-tokens, at most MaxScopes of them, at most maxScopeLen
// bytes together.
func validateScopes(scopes []string) error {
	if len(scopes) > MaxScopes || len(FormatScope(scopes)) > maxScopeLen {
		return fieldError("scopes", "at most %d scopes of at most %d bytes together", MaxScopes, maxScopeLen)
	}
	for _, s := range scopes {
		if !ValidScopeToken(s) {
			return fieldError("scopes", "scope %q is not an RFC 6749 scope-token", s)
		}
	}
	return nil
}

// isVSChars reports whether s is all VSCHAR (%x20-7E, RFC 6749 Appendix A).
func isVSChars(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7E {
			return false
		}
	}
	return true
}

// validClientID reports whether id follows the client_id rules (RFC 6749
// Appendix A.1): 1 to 128 VSCHARs, whether or not the client is registered,
// since an unregistered id is copied into sessions and tokens.
func validClientID(id string) bool {
	return len(id) > 0 && len(id) <= maxClientIDLen && isVSChars(id)
}
