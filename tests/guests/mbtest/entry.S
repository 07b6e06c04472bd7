/* SPDX-License-Identifier: Apache-2.0 */
/* mbtest's entry: the Multiboot v1 header (Multiboot 0.6.96 §3.1; no address fields, so the
 * loader reads the ELF program headers), its own flat GDT (§3.2: the loader's GDTR may be
 * invalid), a stack, then mbtest_main(magic, info). Also the local APIC timer's interrupt
 * stub. */
	.set	MB_MAGIC, 0x1BADB002
	.set	MB_FLAGS, 0x00000003		/* modules page-aligned, memory information */

	.section .multiboot, "a"
	.align	4
	.long	MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)

	.text
	.code32
	.globl	_start
_start:
	cli
	cld
	movl	$stack_top, %esp
	lgdt	gdt_desc
	ljmp	$0x08, $1f
1:	movw	$0x10, %cx
	movw	%cx, %ds
	movw	%cx, %es
	movw	%cx, %fs
	movw	%cx, %gs
	movw	%cx, %ss
	pushl	%ebx				/* multiboot info */
	pushl	%eax				/* 0x2BADB002 */
	call	mbtest_main
2:	cli
	hlt
	jmp	2b

/* Vector 0x40: the local APIC timer. */
	.globl	apic_timer_isr
apic_timer_isr:
	pushal
	call	apic_timer_irq
	popal
	iret

	.section .rodata
	.align	8
gdt:
	.quad	0
	.quad	0x00cf9b000000ffff		/* 0x08: flat 32-bit code */
	.quad	0x00cf93000000ffff		/* 0x10: flat data */
gdt_desc:
	.word	gdt_desc - gdt - 1
	.long	gdt

	.bss
	.align	16
	.skip	16384
stack_top:
	.section .note.GNU-stack, "", @progbits
