/*
 * The one test runner: each test program links it with one suite file,
 * naming that suite's constructor in SUITE.  Tests run in Check's forked
 * mode, so one crashing test cannot take the others down.
 *
 * In a chaos build (configure --enable-chaos) it prints the chaos seed
 * first, so that the run can be repeated (common/chaos.h).  Tests that
 * cannot run here are left out of the suite and print why
 * (tcase_add_test_unless, testutil.h): the program then exits 77, so that
 * it shows as skipped rather than passed, once all the others passed.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include <check.h>

#include "common/chaos.h"
#include "testutil.h"

#ifndef SUITE
#error "SUITE names the suite this runner runs"
#endif

Suite *SUITE(void);

int test_skips;

int
main(void)
{
	SRunner *sr;
	int failed;

	psync_chaos_announce();
	sr = srunner_create(SUITE());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	if (failed > 0)
		return EXIT_FAILURE;
	if (test_skips > 0) {
		fprintf(stderr, "%d test(s) skipped, not run (SKIP above)\n",
		        test_skips);
		return 77;
	}
	return EXIT_SUCCESS;
}
