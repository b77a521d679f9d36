/*
 * unit.h -- a small unit-test harness for shared/ code.
 *
 * A test file (shared/money_test.c) defines tests with TEST(name) and
 * checks with CHECK(cond); tests register themselves at load time and
 * tests/unit.c runs them all, printing "N passed, N failed".
 */
#ifndef TESTS_UNIT_H
#define TESTS_UNIT_H

struct unit_test {
	const char		*name;
	const char		*file;
	void			(*fn)(void);
	struct unit_test	*next;
};

void	unit_register(struct unit_test *);
void	unit_fail(const char *file, int line, const char *what);

#define TEST(name)							\
	static void name(void);						\
	static struct unit_test name##_entry = { #name, __FILE__, name,	\
	    0 };							\
	__attribute__((constructor)) static void			\
	name##_register(void)						\
	{								\
		unit_register(&name##_entry);				\
	}								\
	static void name(void)

#define CHECK(cond)							\
	do {								\
		if (!(cond))						\
			unit_fail(__FILE__, __LINE__, #cond);		\
	} while (0)

#endif
