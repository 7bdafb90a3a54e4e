/* placeholder until the command table lands */
#include <stdio.h>
int main(void)
{
	fputs("keyward: not built yet\n", stderr);
	return 1;
}
