package main

import (
	"reflect"
	"testing"
)

func TestParseYAML_BufFiles(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      any
	}{
		{"empty", "# nothing\n", map[string]any{}},
		{"buf.yaml v2", "version: v2\nmodules:\n  - path: proto # root\n    name: buf.build/acme/bank\nlint:\n  use: [STANDARD, 'COMMENTS']\n",
			map[string]any{"version": "v2", "modules": []any{map[string]any{"path": "proto", "name": "buf.build/acme/bank"}}, "lint": map[string]any{"use": []any{"STANDARD", "COMMENTS"}}}},
		{"sequence at the key's indent", "plugins:\n- plugin: go\n  out: gen\n  opt:\n  - paths=source_relative\n  - \"Mx.proto=example.com/x\"\n",
			map[string]any{"plugins": []any{map[string]any{"plugin": "go", "out": "gen", "opt": []any{"paths=source_relative", "Mx.proto=example.com/x"}}}}},
		{"quotes and hashes", "a: \"x # not a comment\"\nb: 'it''s'\nc: d#e\n",
			map[string]any{"a": "x # not a comment", "b": "it's", "c": "d#e"}},
		{"empty value", "managed:\nversion: v1\n", map[string]any{"managed": "", "version": "v1"}},
	} {
		got, err := parseYAML(tc.src)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %#v\nwant %#v", tc.name, got, tc.want)
		}
	}
}

func TestParseYAML_RejectsWhatItDoesNotSupport(t *testing.T) {
	for _, src := range []string{
		"a: {b: c}\n",
		"a: |\n  text\n",
		"a: &x 1\n",
		"a: 1\n   b: 2\n",
		"- a\nb: c\n",
		"\ta: 1\n",
	} {
		if _, err := parseYAML(src); err == nil {
			t.Errorf("parseYAML(%q) succeeded", src)
		}
	}
}

// FuzzParseYAML checks that no input makes the buf-file reader panic.
func FuzzParseYAML(f *testing.F) {
	f.Add("version: v2\nmodules:\n  - path: proto\n")
	f.Add("plugins:\n- plugin: go\n  opt: [a, 'b', \"c\"]\n")
	f.Add("a:\n  - - x\n  -\n")
	f.Fuzz(func(t *testing.T, src string) {
		v, err := parseYAML(src)
		if err == nil {
			_ = yamlList(yamlMap(v)["plugins"])
		}
	})
}
