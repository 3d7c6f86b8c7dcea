/* placeholder until the hub lands */
int main(void) { return 0; }
