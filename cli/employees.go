package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"keydesk/app"
	"keydesk/internal/sanitize"
)

func newEmployeesCmd(g *globals) *cobra.Command {
	var (
		asJSON bool
		filter string
	)
	cmd := &cobra.Command{
		Use:   "employees",
		Short: "List the merged employees, or add and remove people outside AD",
		Long: `Employees lists the people KeyDesk knows: accounts from every domain that share
an email are one employee. Flags: "no-email" (an account without email, never
merged) and "conflict" (two accounts of one domain share the email).

--filter takes what the console's / filter takes: words, each found in the name,
the email, an account's sAMAccountName (or DOMAIN\sAM), UPN or domain, in any
order and with accents ignored ("lopez anna" finds Anna López; a word also
matches as letters in order within one field), and field filters, all of which
must hold: domain:NAME, flag:no-email|conflict,
key:reserved|active|locked|suspended|none, status:active|removed and
rotation:ok|due|waiting-for-key|held-for-key|under-way|retrying|failed|no-active-key
(a value may be the start of one, or list several: key:reserved,active).`,
		Example: `  keydesk employees --filter anna
  keydesk employees --filter "lopez anna"
  keydesk employees --filter "domain:corp key:none"
  keydesk employees --json
  keydesk employees add --email guard@example.com --name "Night Guard"
  keydesk employees remove guard@example.com`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// A filter that does not parse is a wrong command line: said
			// before anything is opened.
			if _, err := app.ParseFilter(filter); err != nil {
				return usageError{cmd: cmd, err: fmt.Errorf("--filter: %w", err)}
			}
			return g.withReadSession(func(cmd *cobra.Command, _ []string, s *session) error {
				if asJSON {
					// Streamed, one employee at a time, by id: constant
					// memory however many there are.
					return streamJSON(g.stdout, func(put func(any) error) error {
						return s.svc.EachEmployee(cmd.Context(), s.actor, filter, func(v app.EmployeeView) error { return put(v) })
					})
				}
				emps, err := s.svc.Employees(cmd.Context(), s.actor, filter)
				if err != nil {
					return err
				}
				return g.emit(asJSON, emps, func() { printEmployees(g, emps) })
			})(cmd, args)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as a JSON array")
	cmd.Flags().StringVar(&filter, "filter", "", `only the employees this query finds: words (name, email, account, domain; any order, accents ignored) and domain:, flag:, key:, status:, rotation: (see above)`)
	cmd.AddCommand(newEmployeesAddCmd(g), newEmployeesRemoveCmd(g))
	return cmd
}

func printEmployees(g *globals, emps []app.EmployeeView) {
	tw := table(g.stdout)
	fmt.Fprintln(tw, "ID\tNAME\tEMAIL\tSTATUS\tSOURCE\tACCOUNTS\tFLAGS")
	for _, e := range emps {
		email := "-"
		if e.Email != nil {
			email = *e.Email
		}
		var accs []string
		for _, a := range e.Accounts {
			s := a.Domain + `\` + a.SAMAccountName
			if a.LeftReason != nil {
				s += " (" + *a.LeftReason + ")"
			}
			accs = append(accs, s)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, sanitize.Text(e.DisplayName), sanitize.Text(email), e.Status, e.Source,
			sanitize.Text(strings.Join(accs, ", ")), strings.Join(e.Flags, ","))
	}
	tw.Flush()
	fmt.Fprintln(g.stdout, plural(len(emps), "employee"))
}

func newEmployeesAddCmd(g *globals) *cobra.Command {
	var email, name string
	cmd := &cobra.Command{
		Use:   "add --email EMAIL --name NAME",
		Short: "Add a person who has no AD account (an AD account with the same email adopts them later)",
		Args:  cobra.NoArgs,
		RunE: g.withSession(func(cmd *cobra.Command, _ []string, s *session) error {
			e, err := s.svc.AddEmployee(cmd.Context(), s.actor, email, name)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "added employee %d: %s <%s>\n", e.ID, sanitize.Text(e.DisplayName), sanitize.Text(*e.Email))
			return nil
		}),
	}
	cmd.Flags().StringVar(&email, "email", "", "the person's email address (required)")
	cmd.Flags().StringVar(&name, "name", "", "the person's name (required)")
	cmd.MarkFlagRequired("email")
	cmd.MarkFlagRequired("name")
	return cmd
}

func newEmployeesRemoveCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "remove ID|EMAIL",
		Short: "Mark a manually added employee as removed (the record is kept)",
		Args:  cobra.ExactArgs(1),
		RunE: g.withSession(func(cmd *cobra.Command, args []string, s *session) error {
			e, err := s.svc.RemoveEmployee(cmd.Context(), s.actor, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "removed employee %d: %s\n", e.ID, sanitize.Text(e.DisplayName))
			return nil
		}),
	}
}
