package auth_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"authql/auth"
)

func TestParseScope(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    string
		wantErr bool
	}{
		{in: "", want: ""},
		{in: "a", want: "a"},
		{in: "users:read users:write", want: "users:read users:write"},
		{in: "b a b", want: "b a"},
		{in: "!#[]~", want: "!#[]~"},
		{in: " a", wantErr: true},
		{in: "a ", wantErr: true},
		{in: "a  b", wantErr: true},
		{in: "a\tb", wantErr: true},
		{in: `a"b`, wantErr: true},
		{in: `a\b`, wantErr: true},
		{in: "caf\u00e9", wantErr: true},
		{in: strings.Repeat("a ", 600) + "a", wantErr: true},
	} {
		got, err := auth.ParseScope(tc.in)
		if tc.wantErr {
			if err == nil {
				t.Errorf("ParseScope(%q) = %q; want an error", tc.in, got)
			} else {
				wantCode(t, err, auth.CodeInvalidScope)
			}
			continue
		}
		if err != nil || auth.FormatScope(got) != tc.want {
			t.Errorf("ParseScope(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestValidateUsername(t *testing.T) {
	for _, tc := range []struct {
		desc, name string
		wantMsg    string // "" for valid
	}{
		{"ascii", "abc", ""},
		{"punctuation", "user_name-1.2", ""},
		{"at sign", "alice.smith@example", ""},
		{"64 characters", strings.Repeat("x", 64), ""},
		{"64 four-byte characters", strings.Repeat("𠀀", 64), ""},
		{"acute", "josé", ""},
		{"decomposed acute", "jose\u0301", ""},
		{"diaeresis", "Zoë", ""},
		{"umlaut", "Müller", ""},
		{"sharp s", "Straße", ""},
		{"Turkish dotless i", "Yıldız", ""},
		{"Han", "李小龍", ""},
		{"Hiragana", "やまだ", ""},
		{"Japanese mixed", "山田たろうタロウ", ""},
		{"Hangul", "김민수", ""},
		{"Han and Hangul", "金민수", ""},
		{"Han and Bopomofo", "李ㄅㄆㄇ", ""},
		{"Latin and Han", "li小龍", ""},
		{"Devanagari with marks", "हिन्दी", ""},
		{"Thai with marks", "สมชาย", ""},
		{"Arabic", "محمد", ""},
		{"Hebrew", "דוד", ""},
		{"Cyrillic", "Иван", ""},
		{"Cyrillic lower case", "анна", ""},
		{"Greek", "Ελένη", ""},
		{"Cherokee", "ᏣᎳᎩ", ""},
		{"fullwidth", "ａｌｉｃｅ", ""}, // its key is alice's: taken when alice exists
		{"emoji", "alice🙂", ""},

		{"too short", "ab", "3 to 64 characters"},
		{"too short in characters", "éé", "3 to 64 characters"},
		{"65 characters", strings.Repeat("x", 65), "3 to 64 characters"},
		{"65 four-byte characters", strings.Repeat("𠀀", 65), "3 to 64 characters"},
		{"100 KB", strings.Repeat("x", 100_000), "3 to 64 characters"},
		{"100 KB of invalid UTF-8", strings.Repeat("\xff", 100_000), "3 to 64 characters"}, // refused by length before the UTF-8 scan
		{"invalid UTF-8", "\xff\xfe\xfd", "valid UTF-8"},
		{"space", "al ice", "must not contain spaces (U+0020)"},
		{"tab", "al\tice", "must not contain spaces (U+0009)"},
		{"no-break space", "al\u00a0ice", "must not contain spaces (U+00A0)"},
		{"ideographic space", "al\u3000ice", "must not contain spaces (U+3000)"},
		{"NUL", "al\x00ice", "must not contain control characters (U+0000)"},
		{"DEL", "al\x7fice", "must not contain control characters (U+007F)"},
		{"zero width space", "al\u200bice", "invisible formatting characters (U+200B)"},
		{"zero width joiner", "al\u200dice", "invisible formatting characters (U+200D)"},
		{"right-to-left override", "al\u202eice", "invisible formatting characters (U+202E)"},
		{"soft hyphen", "al\u00adice", "invisible formatting characters (U+00AD)"},
		{"byte order mark", "\ufeffalice", "invisible formatting characters (U+FEFF)"},
		{"tag character", "alice\U000E0041", "invisible formatting characters (U+E0041)"},
		{"variation selector", "alice\ufe0f", "invisible formatting characters (U+FE0F)"},
		{"combining grapheme joiner", "ali\u034fce", "invisible formatting characters (U+034F)"},
		{"Mongolian variation selector", "alice\u180b", "invisible formatting characters (U+180B)"},
		{"Hangul filler", "alice\u3164", "blank or filler characters (U+3164)"},
		{"Hangul choseong filler", "alice\u115f", "blank or filler characters (U+115F)"},
		{"Hangul jungseong filler", "alice\u1160", "blank or filler characters (U+1160)"},
		{"halfwidth Hangul filler", "alice\uffa0", "blank or filler characters (U+FFA0)"},
		{"braille blank", "alice\u2800", "blank or filler characters (U+2800)"},
		{"null notehead", "alice\U0001D159", "blank or filler characters (U+1D159)"},
		{"private use", "alice\ue000", "unassigned or private-use characters (U+E000)"},
		{"unassigned", "alice\u0378", "unassigned or private-use characters (U+0378)"},
		{"diaeresis spacing", "al\u00a8ice", "spaces (U+00A8 stands for U+0020)"},
		{"Cyrillic a in Latin", "\u0430lice", "mixes letters of the Cyrillic, Latin scripts"},
		{"Greek o in Latin", "b\u03bfb", "mixes letters of the Latin, Greek scripts"},
		{"Armenian o in Latin", "b\u0585b", "mixes letters of the Latin, Armenian scripts"},
		{"Latin and Cyrillic halves", "alice\u0438\u0432\u0430\u043d", "mixes letters of the Latin, Cyrillic scripts"},
		{"micro sign is Greek mu", "a\u00b5b", "mixes letters of the Latin, Greek scripts"},
		{"Arabic-Indic digit in Latin", "alice\u0661", "mixes letters of the Latin, Arabic scripts"},
		{"Hangul and Katakana", "민수タロウ", "mixes letters of the Hangul, Katakana scripts"},
		{"Cyrillic look-alike", "\u0441\u043e\u0441\u043e", "Cyrillic letters that all look like Latin"},                  // сосо
		{"Cyrillic upper case look-alike", "\u0412\u0410\u041d\u0415\u041a", "Cyrillic letters that all look like Latin"}, // ВАНЕК
		{"Cyrillic look-alike with digits", "\u0440\u0430\u0443\u043f\u0430\u043b_1", ""},                                 // раупал_1: п and л do not look Latin
		{"Cyrillic look-alike with dot", "\u0430\u0440\u0440.\u0456\u043e", "Cyrillic letters that all look like Latin"},  // арр.іо
		{"Cyrillic e with diaeresis", "\u0445\u0451\u0440", "Cyrillic letters that all look like Latin"},                  // хёр
		{"Greek look-alike", "\u03bf\u03c1\u03b1", "Greek letters that all look like Latin"},                              // ορα
		{"Greek look-alike with tonos", "\u039a\u03cc\u03c1\u03bf", "Greek letters that all look like Latin"},             // Κόρο
		{"Cherokee look-alike", "\u13aa\u13f4\u13df", "Cherokee letters that all look like Latin"},                        // ᎪᏴᏟ
		{"Lisu look-alike", "\ua4ee\ua4d0\ua4da", "Lisu letters that all look like Latin"},                                // ꓮꓐꓚ
		{"dotted capital I", "AL\u0130CE", "combining mark (U+0307) on a Latin letter"},
		{"combining dot on i", "ali\u0307ce", "combining mark (U+0307) on a Latin letter"},
		{"combining mark without precomposed form", "alic\u0304e\u0304", "combining mark (U+0304) on a Latin letter"},
		{"combining mark on Cyrillic", "\u0438\u0432\u0430\u043d\u0307", "combining mark (U+0307) on a Cyrillic letter"},
		{"combining mark on a digit", "user1\u0301", "on a character that is no letter"},
		{"combining mark first", "\u0301abc", "on a character that is no letter"},
		{"stacked marks", "\u0939\u093c\u093c\u093f", "stack combining marks (U+093C)"},
		{"five marks", "\u0e01\u0e34\u0e48\u0e31\u0e39\u0e47", "stack combining marks"},
		{"IPA script g", "\u0261oogle", "only look like plain Latin ones (U+0261)"},
		{"small capital", "\u1d0fops", "only look like plain Latin ones (U+1D0F)"},
		{"long s", "\u017felix", "only look like plain Latin ones (U+017F)"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			err := auth.ValidateUsername(tc.name)
			if tc.wantMsg == "" {
				if err != nil {
					t.Errorf("ValidateUsername(%+q) = %v; want nil", tc.name, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("ValidateUsername(%+.80q) = %v; want %q", tc.name, err, tc.wantMsg)
			}
			if ae := wantCode(t, err, auth.CodeInvalidRequest); ae.Field != "username" {
				t.Errorf("field = %q; want username", ae.Field)
			}
		})
	}
}

func TestUsernameKey(t *testing.T) {
	for _, tc := range []struct{ a, b string }{
		{"alice", "ALICE"},
		{"alice", "Alice"},
		{"alice", "ａｌｉｃｅ"},
		{"alice", "ＡＬＩＣＥ"},
		{"straße", "STRASSE"},
		{"josé", "jose\u0301"},
		{"JOSÉ", "jose\u0301"},
		{"office", "o\ufb03ce"},    // ﬃ ligature
		{"ꭰꭱꭲ", "ᎠᎡᎢ"},             // Cherokee, both cases
		{"σοφία", "ΣΟΦΊΑ"},         // final and medial sigma
		{"ｶﾀｶﾅ", "カタカナ"},           // halfwidth Katakana
		{"\u1100\u1161", "\uac00"}, // conjoining jamo and the syllable
		{"scientist", "ſcientiſt"}, // long s
		{"kelvin", "\u212aelvin"},  // KELVIN SIGN
		{"x²", "x2"},               // superscript
		{"ℌilbert", "hilbert"},     // black-letter H
		{"\u00b5s", "\u03bcs"},     // MICRO SIGN is Greek mu
	} {
		if ka, kb := auth.UsernameKey(tc.a), auth.UsernameKey(tc.b); ka != kb {
			t.Errorf("UsernameKey(%+q) = %+q, UsernameKey(%+q) = %+q; want equal", tc.a, ka, tc.b, kb)
		}
	}
	for _, tc := range []struct{ a, b string }{
		{"alice", "\u0430lice"},  // Cyrillic а
		{"alice", "ali\u0307ce"}, // what ALİCE folds to
		{"alice", "alıce"},       // Turkish dotless i, another letter
		{"alice", "alice\u3164"}, // Hangul filler
	} {
		if ka, kb := auth.UsernameKey(tc.a), auth.UsernameKey(tc.b); ka == kb {
			t.Errorf("UsernameKey(%+q) = UsernameKey(%+q) = %+q; want different", tc.a, tc.b, ka)
		}
	}
	if got, want := auth.UsernameKey("ALİCE"), "ali\u0307ce"; got != want {
		t.Errorf("UsernameKey(ALİCE) = %+q; want %+q", got, want)
	}
}

// UsernameKey is idempotent: the key of a key is the key. Stored keys rely
// on it (the migration compares them), and so does the proof that a key
// which is not its own key can never be reached by a login.
func TestUsernameKeyStable(t *testing.T) {
	tricky := []string{
		"ALİCE", "İ", "ı", "ß", "ẞ", "ﬀ", "ﬁ", "ŉ", "ǰ", "J\u030c", "ΐ", "ΰ",
		"ᾼ", "ᾳ", "ῼ", "\u0345", "ͅ", "Σ", "ς", "ϐ", "ϑ", "ϕ", "ϰ", "ϱ", "ϵ", "ẛ",
		"ᏸ", "ꭰ", "Ꭰ", "Ᏸ", "\u13a0\u0301", "ꭰ\u0345",
		"㍿", "ﷺ", "ﾊﾟ", "ｶﾞ", "Å", "Å", "Ω", "K", "ℌ", "ⅸ", "Ⅸ", "①", "⒜", "🄰",
		"ǅ", "ǈ", "ǋ", "ǲ", "Ꞵ", "Ɜ", "ᶜ", "ᴬ", "ª", "º", "µ", "¨", "´", "¸", "˘",
		"\u1100\u1161\u11a8", "각", "ᄀ\u1161", "\u0f73", "\u0f75", "\u0f81",
		"a\u0328\u0301", "a\u0301\u0328", "ĩ\u0301", "\u1e9e\u0301",
		"\u0390\u0301", "\u1fd3", "\u1fe3",
	}
	var all []string
	for _, a := range tricky {
		all = append(all, a, a+a, "x"+a, a+"\u0301", strings.ToUpper(a), strings.ToLower(a))
	}
	for r := rune(0); r < 0x3000; r++ { // every character of the alphabetic scripts
		all = append(all, string(r), string(r)+"\u0301", string(r)+"\u0345")
	}
	for _, s := range all {
		key := auth.UsernameKey(s)
		if again := auth.UsernameKey(key); again != key {
			t.Errorf("UsernameKey(%+q) = %+q, whose key is %+q", s, key, again)
		}
	}
}

func TestValidatePassword(t *testing.T) {
	for _, tc := range []struct {
		password string
		wantMsg  string // "" for valid
	}{
		{"tr0ub4dor&3x", ""},
		{strings.Repeat("x", 72), ""},
		{strings.Repeat("é", 36), ""}, // 72 bytes
		{"1234567", "at least 8 characters"},
		{strings.Repeat("x", 73), "at most 72 bytes"},
		{strings.Repeat("é", 37), "at most 72 bytes"},
		{"12345678", "most common passwords"},
		{"password", "most common passwords"},
		{"PassWord", "most common passwords"},
		{"iloveyou", "most common passwords"},
		{"qwertyuiop", "most common passwords"},
	} {
		err := auth.ValidatePassword("password", tc.password)
		if tc.wantMsg == "" {
			if err != nil {
				t.Errorf("ValidatePassword(%d bytes) = %v", len(tc.password), err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantMsg) {
			t.Errorf("ValidatePassword(%d bytes) = %v; want %q", len(tc.password), err, tc.wantMsg)
		}
	}
}

// Scope lists are bounded: an administrator cannot store thousands of
// scopes that every metadata request would then read.
func TestScopeListsAreBounded(t *testing.T) {
	svc, _, _ := mustService(t)
	u := mustCreateUser(t, svc, "alice", "correct horse")
	many := make([]string, auth.MaxScopes+1)
	for i := range many {
		many[i] = fmt.Sprint("s", i)
	}
	_, err := svc.SetUserScopes(context.Background(), auth.Operator, u.ID, many)
	wantCode(t, err, auth.CodeInvalidRequest)
	_, err = svc.SetUserScopes(context.Background(), auth.Operator, u.ID, []string{strings.Repeat("x", 1025)})
	wantCode(t, err, auth.CodeInvalidRequest)
	if _, err := svc.SetUserScopes(context.Background(), auth.Operator, u.ID, many[:auth.MaxScopes]); err != nil {
		t.Errorf("%d short scopes: %v", auth.MaxScopes, err)
	}
}
