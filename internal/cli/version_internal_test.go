package cli

import "testing"

func TestBuildInfoString(t *testing.T) {
	for _, tt := range []struct {
		info buildInfo
		want string
	}{
		{buildInfo{Version: "(devel)"}, "(devel) (no VCS revision stamped)"},
		{buildInfo{Version: "v1.2.0", Revision: "4f2c9e1a7b3d5c6e7f8091a2b3c4d5e6f7a8b9c0"}, "v1.2.0 (revision 4f2c9e1a7b3d)"},
		{buildInfo{Version: "(devel)", Revision: "4f2c9e1", Modified: true, Time: "2026-05-01T10:00:00Z"},
			"(devel) (revision 4f2c9e1, modified, 2026-05-01T10:00:00Z)"},
	} {
		if got := tt.info.String(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.info, got, tt.want)
		}
	}
}
