package modelstest

import (
	"io"
	"log/slog"

	"github.com/certdesk/certdesk/models"
)

// The people of the tests: two admins (four eyes need two) and a partner
// of the organisation acme.
var (
	Admin   = models.Actor{Subject: "alice-admin", Role: models.RoleAdmin, Source: "192.0.2.1"}
	Admin2  = models.Actor{Subject: "bob-admin", Role: models.RoleAdmin, Source: "192.0.2.2"}
	Partner = models.Actor{Subject: "carol-partner", Role: models.RolePartner, Org: "acme", Source: "198.51.100.7"}
)

// Logs is a logger that writes nowhere, for the code under test.
var Logs = slog.New(slog.NewTextHandler(io.Discard, nil))
