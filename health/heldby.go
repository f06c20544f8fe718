package health

import "slices"

// returned is services as they would be once every node in down is back and healthy: each of
// its instances passing, and a member of those with no instance in the catalog back in it.
func returned(services []Service, down map[string]string) []Service {
	out := make([]Service, 0, len(services))
	for _, svc := range services {
		back := svc
		back.Instances = make([]Instance, 0, len(svc.Instances))
		for _, inst := range withMissing(svc) {
			if _, ok := down[inst.Node]; ok {
				checks := make([]Check, len(inst.Checks))
				for i, c := range inst.Checks {
					c.Status = "passing"
					checks[i] = c
				}
				inst.Checks = checks
			}
			back.Instances = append(back.Instances, inst)
		}
		back.Members = nil
		out = append(out, back)
	}
	return out
}

// inFlightIn are the nodes of down whose instances rep counts failing, sorted.
func inFlightIn(rep Report, down map[string]string) []string {
	var out []string
	for _, sr := range rep.Services {
		for _, n := range sr.FailingOn {
			if _, ok := down[n]; ok {
				out = append(out, n)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
