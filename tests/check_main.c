/*
 * The one test runner: each test program links it with one suite file,
 * naming that suite's constructor in SUITE.  Tests run in Check's forked
 * mode, so one crashing test cannot take the others down.
 */
#include <stdlib.h>

#include <check.h>

#ifndef SUITE
#error "SUITE names the suite this runner runs"
#endif

Suite *SUITE(void);

int
main(void)
{
	SRunner *sr = srunner_create(SUITE());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
