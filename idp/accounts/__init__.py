"""The people's own pages at the IdP: two-factor sign-in (enrolment, the code step, recovery codes)."""
