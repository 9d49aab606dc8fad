/*
 * check_polyset.c - the polyset suite: every clause of SPEC.md's polyset
 * section.
 */
#include <polysocket/polyset.h>

#include "tests/testutil.h"

Suite *polyset_suite(void);

START_TEST(test_polyset_create_close)
{
	polyset *set = polyset_create();

	ck_assert_ptr_nonnull(set);
	polyset_close(set);
	polyset_close(NULL);
}
END_TEST

Suite *
polyset_suite(void)
{
	Suite *s = suite_create("polyset");
	TCase *tc;

	tc = new_tcase(s, "basics", 10);
	tcase_add_test(tc, test_polyset_create_close);
	return s;
}
