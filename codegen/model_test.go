package codegen

import (
	"slices"
	"testing"

	"google.golang.org/protobuf/compiler/protogen"
)

func TestHandlerMethods_QualifyEventsThatShareAName(t *testing.T) {
	ev := func(pkg, name string) *event {
		return &event{
			msg:  &protogen.Message{GoIdent: protogen.GoIdent{GoName: name}},
			file: &protogen.File{GoPackageName: protogen.GoPackageName(pkg)},
		}
	}
	got := handlerMethods("Project", []*event{ev("bankv1", "Opened"), ev("cardv1", "Opened"), ev("bankv1", "Closed")})
	want := []string{"ProjectBankv1Opened", "ProjectCardv1Opened", "ProjectClosed"}
	if !slices.Equal(got, want) {
		t.Errorf("handlerMethods = %q, want %q", got, want)
	}
}

func TestAn_ChoosesTheArticle(t *testing.T) {
	for in, want := range map[string]string{"Account": "an Account", "Card": "a Card", "int64": "an int64", "": "a "} {
		if got := an(in); got != want {
			t.Errorf("an(%q) = %q, want %q", in, got, want)
		}
	}
}
